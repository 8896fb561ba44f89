/**
 * The fifo allocator of a segment, shared by every process attached to it:
 *
 * - Chunks (a fifo header and its data) are carved from a bump region; freed fifos go onto
 *   per-class freelists (stacks linked through the chunks).
 * - Every change of the bump, a freelist or a fifo's state happens under one allocator lock,
 *   whose word holds the holder's process tag (`process_table.ts`). Before its first change the
 *   holder writes what it is about to do into a one-entry journal. A process that finds the lock
 *   held by a dead process takes it over and, seeing the journal, finishes or undoes the dead
 *   holder's operation, so no chunk is ever lost and no fifo left half freed, wherever a process
 *   is killed. Allocation is not a hot path (about a microsecond); the fifos' data paths never
 *   take the lock.
 * - Each process keeps its own index of the chunk starts it has walked and checked, extended as
 *   the bump moves: finding a fifo by offset costs a binary search, and a bump that moved
 *   backwards or into the middle of a chunk is caught before anything is carved there.
 *
 * Every offset read from shared memory is checked against the segment and the index before it
 * is followed, and a chunk's state is checked before it is handed out: a scribbling peer gets
 * `SegmentError` "corrupt", never the library writing into a live fifo on its behalf.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import type { FifoList, FifoMemory } from "../fifo/fifo.ts";
import type { ChunkBatch } from "../fifo/fifo_chunks.ts";
import {
  CHUNK_CLAIMED,
  CHUNK_TABLE_STRIDE,
  chunkBytes,
  chunkTableWord,
  classBytes,
  FC_FIFO,
  FF_ALLOC_SEQ,
  FF_CAPACITY,
  FF_CHUNK_BYTES,
  FF_CHUNK_LENGTH,
  FF_CLASS,
  FF_KIND,
  FF_LIST,
  FF_MAGIC,
  FF_NEXT_FREE,
  FF_OWNER,
  FF_PRODUCER_HAND,
  FF_REFCOUNT,
  FF_STATE,
  FIFO_AREA_START,
  FIFO_HEADER_SIZE,
  FIFO_LIST_CODES,
  FIFO_MAGIC,
  FIFO_STATE_FREE,
  FIFO_STATE_LIVE,
  FS_ALLOC_SEQ,
  FS_BUMP,
  FS_FLAG_PREALLOCATED,
  FS_FLAGS,
  FS_FREELISTS,
  FS_JOURNAL_CHUNK,
  FS_JOURNAL_CLASS,
  FS_JOURNAL_OP,
  FS_JOURNAL_TARGET,
  FS_LOCK,
  isChunkLength,
  JOURNAL_CARVE,
  JOURNAL_DROP,
  JOURNAL_FREE,
  JOURNAL_FREE_CHUNKED,
  JOURNAL_GROW,
  JOURNAL_NONE,
  JOURNAL_POP,
  KIND_FIFO,
  KIND_FIFO_CHUNK,
  MAX_CHUNK_CLASS,
  PRIVATE_TAG,
  SIZE_CLASSES,
  tableChunk,
} from "../layout.ts";
import type { Liveness } from "./process_table.ts";

/** Memory the allocator works on: the fifo views plus who this process is. */
export interface AllocatorMemory extends FifoMemory {
  readonly liveness: Liveness;
}

/** A chunk seen while walking the fifo area. */
export interface ChunkInfo {
  readonly offset: number;
  readonly length: number;
  /** FIFO_STATE_FREE, FIFO_STATE_LIVE, or 0 for a chunk whose header does not make sense. */
  readonly state: number;
  readonly sizeClass: number;
}

/** What an audit of the allocator found (see {@link FifoAllocator.audit}). */
export interface AllocatorAudit {
  /** Chunks below the bump. */
  readonly chunks: number;
  /** Live fifos. */
  readonly live: number;
  /** Chunks on freelists. */
  readonly free: number;
  /** Chunks neither live nor on a freelist (or on one twice, or on the wrong one). */
  readonly lost: readonly number[];
}

/** Fifos carved at once when a class's freelist is empty: about 64 KiB worth, 1 to 16 of them. */
function batchFor(sizeClass: number): number {
  return Math.max(1, Math.min(16, Math.floor(65536 / chunkBytes(sizeClass))));
}

/** Lock attempts before asking whether the holder still lives. */
const SPINS_BEFORE_CHECK = 256;
/** The allocation number of every data chunk: they have no handles to tell apart. */
const DATA_CHUNK_SEQ = 1;
/** How long a waiter for the allocator lock spins before it checks the holder's life and sleeps. */
const SPIN_MS = 0.2;

/** Allocates and frees fifos in one segment's memory. */
export class FifoAllocator {
  readonly #m: AllocatorMemory;
  readonly #u32: Uint32Array;
  /** Chunk starts walked and checked by this process, ascending; `#walked` of them are valid. */
  #starts = new Uint32Array(64);
  #walked = 0;
  /** Where this process's walk stopped: the bump as last verified. */
  #walkedEnd = FIFO_AREA_START;

  constructor(memory: AllocatorMemory) {
    this.#m = memory;
    this.#u32 = memory.u32;
  }

  #corrupt(what: string): never {
    throw new SegmentError("corrupt", `segment "${this.#m.name}": ${what}`);
  }

  // ---- the chunk index -------------------------------------------------------------------

  /** The bump offset, checked against the segment and against what this process already walked. */
  bump(): number {
    const b = Atomics.load(this.#u32, FS_BUMP >>> 2);
    if (b < FIFO_AREA_START || b > this.#m.size || b % 64 !== 0) this.#corrupt(`bump offset ${b} is out of bounds`);
    if (b < this.#walkedEnd) this.#corrupt(`bump offset ${b} moved back below ${this.#walkedEnd}`);
    return b;
  }

  /** Extends the index to the current bump; the walk must land exactly on it. */
  #extend(): void {
    const end = this.bump();
    let offset = this.#walkedEnd;
    while (offset < end) {
      const length = Atomics.load(this.#u32, (offset + FF_CHUNK_LENGTH) >>> 2);
      if (!isChunkLength(length) || offset + length > end) {
        this.#corrupt(`chunk at ${offset} has a bad length ${length} (bump ${end})`);
      }
      if (this.#walked === this.#starts.length) {
        const grown = new Uint32Array(this.#starts.length * 2);
        grown.set(this.#starts);
        this.#starts = grown;
      }
      this.#starts[this.#walked++] = offset;
      offset += length;
      this.#walkedEnd = offset;
    }
  }

  /** Whether a chunk starts at `offset`. */
  isChunkStart(offset: number): boolean {
    if (!Number.isSafeInteger(offset) || offset < FIFO_AREA_START || offset % 64 !== 0) return false;
    if (offset >= this.#walkedEnd) this.#extend();
    let lo = 0;
    let hi = this.#walked - 1;
    const starts = this.#starts;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = starts[mid];
      if (at === offset) return true;
      if (at < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** Where the chunk that starts at `offset` ends, by this process's index (not by its header); 0 if none starts there. */
  chunkEnd(offset: number): number {
    if (!this.isChunkStart(offset)) return 0;
    let lo = 0;
    let hi = this.#walked - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#starts[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1 < this.#walked ? this.#starts[lo + 1] : this.#walkedEnd;
  }

  /** Whether `offset` is a chunk of `sizeClass` in state `state`. */
  #isChunkOf(offset: number, sizeClass: number, state: number): boolean {
    const w = offset >>> 2;
    return this.isChunkStart(offset) && Atomics.load(this.#u32, w + FF_MAGIC / 4) === FIFO_MAGIC &&
      Atomics.load(this.#u32, w + FF_CLASS / 4) === sizeClass &&
      Atomics.load(this.#u32, w + FF_CHUNK_LENGTH / 4) === chunkBytes(sizeClass) &&
      Atomics.load(this.#u32, w + FF_STATE / 4) === state;
  }

  // ---- the lock and its journal ----------------------------------------------------------

  /** Takes the allocator lock, from a dead holder if need be, and repairs what a dead holder left. */
  #lock(): void {
    const u32 = this.#u32;
    const liveness = this.#m.liveness;
    const me = liveness.ownTag;
    let dead = 0; // the holder we took the lock from, if it died holding it
    let spinningSince = -1;
    for (let spins = 0;; spins++) {
      const holder = Atomics.compareExchange(u32, FS_LOCK >>> 2, 0, me);
      if (holder === 0) break;
      // Our own (unique) tag while we do not hold the lock was written by someone else.
      if (holder === me && me !== PRIVATE_TAG) {
        if (Atomics.compareExchange(u32, FS_LOCK >>> 2, holder, me) === holder) break;
        continue;
      }
      if (spins < SPINS_BEFORE_CHECK) continue;
      spins = 0;
      // A live holder lets go within microseconds (a chunked fifo's two sides take the lock
      // about as often as each other): spin that long before asking the kernel and sleeping.
      const now = performance.now();
      if (spinningSince < 0) spinningSince = now;
      if (now - spinningSince < SPIN_MS) continue;
      if (!liveness.isAlive(holder)) {
        if (Atomics.compareExchange(u32, FS_LOCK >>> 2, holder, me) === holder) {
          dead = holder;
          break;
        }
        continue;
      }
      liveness.pause();
    }
    // A live holder always clears its journal before it lets go, so only a lock taken from a
    // dead holder has a journal to replay; one found on a free lock was forged and is dropped.
    if (Atomics.load(u32, FS_JOURNAL_OP >>> 2) !== JOURNAL_NONE) {
      try {
        if (dead !== 0) this.#recover(dead);
      } catch (error) {
        this.#unlock(); // a journal that cannot be replayed is dropped, and the lock let go
        throw error;
      }
      Atomics.store(u32, FS_JOURNAL_OP >>> 2, JOURNAL_NONE);
    }
  }

  #unlock(): void {
    Atomics.store(this.#u32, FS_JOURNAL_OP >>> 2, JOURNAL_NONE);
    Atomics.store(this.#u32, FS_LOCK >>> 2, 0);
  }

  #locked<T>(work: () => T): T {
    this.#lock();
    try {
      return work();
    } finally {
      this.#unlock();
    }
  }

  /** Records the operation about to start; the op word is written last. */
  #journal(op: number, chunk: number, sizeClass: number, target = 0): void {
    Atomics.store(this.#u32, FS_JOURNAL_TARGET >>> 2, target);
    Atomics.store(this.#u32, FS_JOURNAL_CHUNK >>> 2, chunk);
    Atomics.store(this.#u32, FS_JOURNAL_CLASS >>> 2, sizeClass);
    Atomics.store(this.#u32, FS_JOURNAL_OP >>> 2, op);
  }

  /**
   * Finishes or undoes the operation the dead holder `holder` journaled. Runs under the lock.
   * The journal is a peer's word like any other: a live fifo is touched only when the dead
   * holder had just made it live (its owner), never on the journal's say alone.
   */
  #recover(holder: number): void {
    const u32 = this.#u32;
    const op = Atomics.load(u32, FS_JOURNAL_OP >>> 2);
    const chunk = Atomics.load(u32, FS_JOURNAL_CHUNK >>> 2);
    const sizeClass = Atomics.load(u32, FS_JOURNAL_CLASS >>> 2);
    if (sizeClass >= SIZE_CLASSES) this.#corrupt(`journal names class ${sizeClass}`);
    if (op !== JOURNAL_CARVE && !this.isChunkStart(chunk)) this.#corrupt(`journal names ${chunk}, which is no chunk`);
    const target = Atomics.load(u32, FS_JOURNAL_TARGET >>> 2);
    if (op === JOURNAL_GROW && this.#isWord(target) && Atomics.load(u32, target >>> 2) === chunk) {
      // The chunk reached its table word: the grow was done.
    } else if (op === JOURNAL_POP || op === JOURNAL_GROW) {
      // Popped (the head moved on) but never handed to anyone: put it back.
      const state = Atomics.load(u32, (chunk + FF_STATE) >>> 2);
      const mine = state === FIFO_STATE_FREE ||
        (state === FIFO_STATE_LIVE && Atomics.load(u32, (chunk + FF_OWNER) >>> 2) === holder);
      if (
        mine && this.#head(sizeClass) !== chunk && this.#isChunkOf(chunk, sizeClass, state) &&
        !this.#onList(sizeClass, chunk)
      ) {
        this.#makeFree(chunk);
        this.#push(sizeClass, chunk);
      }
    } else if (op === JOURNAL_DROP) {
      // The chunk goes onto its list, then its table (or hand) word is cleared: finish whichever is left.
      const state = Atomics.load(u32, (chunk + FF_STATE) >>> 2);
      if (
        (state === FIFO_STATE_FREE || Atomics.load(u32, (chunk + FF_KIND) >>> 2) === KIND_FIFO_CHUNK) &&
        this.#isChunkOf(chunk, sizeClass, state) && !this.#onList(sizeClass, chunk)
      ) {
        this.#makeFree(chunk);
        this.#push(sizeClass, chunk);
      }
      const value = this.#isWord(target) ? Atomics.load(u32, target >>> 2) : 0;
      if (value !== 0 && tableChunk(value) === chunk) Atomics.store(u32, target >>> 2, 0);
    } else if (op === JOURNAL_FREE_CHUNKED) {
      // Its last reference was dropped: its chunks and then its header go back (each step is
      // idempotent, so a repeated one does no harm).
      const state = Atomics.load(u32, (chunk + FF_STATE) >>> 2);
      if (
        (state === FIFO_STATE_LIVE || state === FIFO_STATE_FREE) && this.#isChunkOf(chunk, sizeClass, state) &&
        Atomics.load(u32, (chunk + FF_REFCOUNT) >>> 2) === 0 && !this.#onList(sizeClass, chunk)
      ) {
        this.#dropTable(chunk, sizeClass, true);
        this.#makeFree(chunk);
        this.#push(sizeClass, chunk);
      }
    } else if (op === JOURNAL_FREE) {
      // The last reference was dropped (refcount 0) but the fifo may not be on its list yet.
      const state = Atomics.load(u32, (chunk + FF_STATE) >>> 2);
      if (
        (state === FIFO_STATE_LIVE || state === FIFO_STATE_FREE) && this.#isChunkOf(chunk, sizeClass, state) &&
        Atomics.load(u32, (chunk + FF_REFCOUNT) >>> 2) === 0 && !this.#onList(sizeClass, chunk)
      ) {
        this.#makeFree(chunk);
        this.#push(sizeClass, chunk);
      }
    } else if (op === JOURNAL_CARVE) {
      // Chunks carved from `chunk` (the bump before) on: each formatted and on its list.
      this.#extend();
      const listed = new Set(this.#list(sizeClass));
      for (let offset = chunk; offset < this.#walkedEnd;) {
        if (!this.isChunkStart(offset)) this.#corrupt(`journal's carve start ${offset} is not a chunk`);
        const length = Atomics.load(u32, (offset + FF_CHUNK_LENGTH) >>> 2);
        // A carve only ever makes free chunks: a live one in the range was not this carve's.
        const live = Atomics.load(u32, (offset + FF_STATE) >>> 2) === FIFO_STATE_LIVE &&
          Atomics.load(u32, (offset + FF_MAGIC) >>> 2) === FIFO_MAGIC;
        if (!live && !listed.has(offset)) {
          this.#formatFree(offset, sizeClassOfLength(length));
          this.#push(sizeClassOfLength(length), offset);
        }
        offset += length;
      }
    } else {
      this.#corrupt(`journal holds an unknown operation ${op}`);
    }
  }

  /** If the lock is held by a dead process, takes it and repairs what it left. */
  repair(): void {
    const holder = Atomics.load(this.#u32, FS_LOCK >>> 2);
    if (holder !== 0 && !this.#m.liveness.isAlive(holder)) this.#locked(() => {});
  }

  // ---- freelists (under the lock) --------------------------------------------------------

  #head(sizeClass: number): number {
    return Atomics.load(this.#u32, (FS_FREELISTS >>> 2) + sizeClass);
  }

  #push(sizeClass: number, offset: number): void {
    Atomics.store(this.#u32, (offset + FF_NEXT_FREE) >>> 2, this.#head(sizeClass));
    Atomics.store(this.#u32, (FS_FREELISTS >>> 2) + sizeClass, offset);
  }

  /** Takes the first free fifo of a class off its list (journaled); 0 when the list is empty. */
  #pop(sizeClass: number): number {
    const offset = this.#head(sizeClass);
    if (offset === 0) return 0;
    if (!this.#isChunkOf(offset, sizeClass, FIFO_STATE_FREE)) {
      this.#corrupt(`freelist ${sizeClass} starts at ${offset}, which is not a free fifo of that class`);
    }
    const next = Atomics.load(this.#u32, (offset + FF_NEXT_FREE) >>> 2);
    if (next !== 0 && !this.#isChunkOf(next, sizeClass, FIFO_STATE_FREE)) {
      this.#corrupt(`freelist ${sizeClass} links ${offset} to ${next}, which is not a free fifo of that class`);
    }
    this.#journal(JOURNAL_POP, offset, sizeClass);
    Atomics.store(this.#u32, (FS_FREELISTS >>> 2) + sizeClass, next);
    return offset;
  }

  /** The offsets on a class's list, checked and bounded by what the segment could hold. */
  #list(sizeClass: number): number[] {
    const limit = Math.floor(this.#m.size / chunkBytes(sizeClass));
    const out: number[] = [];
    for (let offset = this.#head(sizeClass); offset !== 0;) {
      if (!this.#isChunkOf(offset, sizeClass, FIFO_STATE_FREE) || out.length >= limit) {
        this.#corrupt(`freelist ${sizeClass} is broken at ${offset}`);
      }
      out.push(offset);
      offset = Atomics.load(this.#u32, (offset + FF_NEXT_FREE) >>> 2);
    }
    return out;
  }

  #onList(sizeClass: number, chunk: number): boolean {
    const limit = Math.floor(this.#m.size / chunkBytes(sizeClass));
    let count = 0;
    for (let offset = this.#head(sizeClass); offset !== 0 && count <= limit; count++) {
      if (offset === chunk) return true;
      if (!this.isChunkStart(offset)) return false;
      offset = Atomics.load(this.#u32, (offset + FF_NEXT_FREE) >>> 2);
    }
    return false;
  }

  // ---- chunks ----------------------------------------------------------------------------

  /** Writes a free chunk's header (all of it: the bytes past the bump may hold a dead carver's). */
  #formatFree(offset: number, sizeClass: number): void {
    const w = offset >>> 2;
    this.#u32.fill(0, w, w + FIFO_HEADER_SIZE / 4);
    this.#u32[w + FF_CHUNK_LENGTH / 4] = chunkBytes(sizeClass);
    this.#u32[w + FF_CLASS / 4] = sizeClass;
    Atomics.store(this.#u32, w + FF_STATE / 4, FIFO_STATE_FREE);
    Atomics.store(this.#u32, w + FF_MAGIC / 4, FIFO_MAGIC);
  }

  /** Marks a chunk free: no allocation number (every handle to it fails from now), no references. */
  #makeFree(offset: number): void {
    const w = offset >>> 2;
    Atomics.store(this.#u32, w + FF_ALLOC_SEQ / 4, 0);
    Atomics.store(this.#u32, w + FF_REFCOUNT / 4, 0);
    Atomics.store(this.#u32, w + FF_OWNER / 4, 0);
    Atomics.store(this.#u32, w + FF_STATE / 4, FIFO_STATE_FREE);
  }

  /** Carves one free chunk of a class at the bump (not on any list); 0 when there is no room. */
  #carve(sizeClass: number): number {
    this.#extend();
    const offset = this.bump();
    if (offset !== this.#walkedEnd) this.#corrupt(`bump offset ${offset} is not where the chunks end`);
    const length = chunkBytes(sizeClass);
    if (offset + length > this.#m.size) return 0;
    this.#formatFree(offset, sizeClass);
    Atomics.store(this.#u32, FS_BUMP >>> 2, offset + length);
    this.#extend();
    return offset;
  }

  /** Carves up to `count` chunks of a class onto its list (journaled); returns how many. */
  #carveOnto(sizeClass: number, count: number): number {
    this.#journal(JOURNAL_CARVE, this.bump(), sizeClass);
    const carved: number[] = [];
    while (carved.length < count) {
      const offset = this.#carve(sizeClass);
      if (offset === 0) break;
      carved.push(offset);
    }
    // Pushed highest first, so the batch is handed out in address order.
    for (let i = carved.length - 1; i >= 0; i--) this.#push(sizeClass, carved[i]);
    Atomics.store(this.#u32, FS_JOURNAL_OP >>> 2, JOURNAL_NONE);
    return carved.length;
  }

  get preallocated(): boolean {
    return (Atomics.load(this.#u32, FS_FLAGS >>> 2) & FS_FLAG_PREALLOCATED) !== 0;
  }

  /** Takes a chunk for `size` bytes of a kind (a fifo by default) and makes it live; returns its offset or 0. */
  alloc(size: number, list: FifoList, kind = KIND_FIFO, init?: (offset: number) => void): number {
    const sizeClass = classOf(size);
    return this.#locked(() => {
      const offset = this.#take(sizeClass);
      if (offset === 0) return 0;
      this.#makeLive(offset, size, list, kind, init);
      return offset;
    });
  }

  /** Pops a free chunk of a class, carving a batch first when its list is empty; 0 when there is no room. */
  #take(sizeClass: number): number {
    const offset = this.#pop(sizeClass);
    if (offset !== 0 || this.preallocated || this.#carveOnto(sizeClass, batchFor(sizeClass)) === 0) return offset;
    return this.#pop(sizeClass);
  }

  // ---- chunked fifos ---------------------------------------------------------------------

  /** Whether `offset` can be a table word: 4-aligned, in the fifo area. */
  #isWord(offset: number): boolean {
    return offset >= FIFO_AREA_START && offset % 4 === 0 && offset + 4 <= this.#m.size;
  }

  /**
   * Whether the chunked fifo at `fifo` (a chunk start its handle checked) is still allocation
   * `seq`: its words are read, not its place in the index.
   */
  #isChunkedFifo(fifo: number, seq: number): boolean {
    const u32 = this.#u32;
    return Atomics.load(u32, (fifo + FF_ALLOC_SEQ) >>> 2) === seq &&
      Atomics.load(u32, (fifo + FF_STATE) >>> 2) === FIFO_STATE_LIVE &&
      Atomics.load(u32, (fifo + FF_KIND) >>> 2) === KIND_FIFO && Atomics.load(u32, (fifo + FF_CHUNK_BYTES) >>> 2) !== 0;
  }

  /** Whether `chunk` is a live data chunk of `sizeClass` that belongs to the fifo at `fifo`. */
  #isDataChunk(chunk: number, sizeClass: number, fifo: number): boolean {
    const u32 = this.#u32;
    return this.#isChunkOf(chunk, sizeClass, FIFO_STATE_LIVE) &&
      Atomics.load(u32, (chunk + FF_KIND) >>> 2) === KIND_FIFO_CHUNK &&
      Atomics.load(u32, (chunk + FC_FIFO) >>> 2) === fifo;
  }

  /**
   * The producer's step for the chunked fifo at `fifo` (allocation `seq`), under one hold of the
   * lock: fills the empty table words of `batch` in order with chunks of `sizeClass` from the
   * freelists. Returns how many of its words were filled: fewer when the segment ran out of
   * chunks, 0 when the fifo is gone. Every take is journaled: killed anywhere, each chunk ends
   * in exactly one table word or on its list.
   */
  growChunks(fifo: number, seq: number, sizeClass: number, batch: ChunkBatch): number {
    const { words, count } = batch;
    if (sizeClass > MAX_CHUNK_CLASS) this.#corrupt(`a chunked fifo's chunks cannot be of class ${sizeClass}`);
    const u32 = this.#u32;
    this.#lock();
    try {
      if (!this.#isChunkedFifo(fifo, seq)) return 0;
      for (let i = 0; i < count; i++) {
        const word = words[i];
        if (!this.#isWord(word)) return i;
        const value = Atomics.load(u32, word >>> 2);
        if (value !== 0) {
          if ((value & CHUNK_CLAIMED) === 0) continue; // filled already
          // A chunk the consumer claimed to give back and has not yet: its give-back checks the
          // word under this lock, so taking the chunk back here undoes it.
          const claimed = tableChunk(value);
          if (this.#dataChunkClass(claimed, fifo) !== sizeClass) this.#notItsChunk(fifo, word, claimed);
          Atomics.store(u32, word >>> 2, claimed);
          continue;
        }
        const chunk = this.#take(sizeClass);
        if (chunk === 0) return i;
        // A data chunk has no handles: no allocation number of its own, no user fields.
        const w = chunk >>> 2;
        u32[w + FF_CAPACITY / 4] = classBytes(sizeClass);
        u32[w + FF_LIST / 4] = 0;
        u32[w + FF_NEXT_FREE / 4] = 0;
        u32[w + FF_OWNER / 4] = this.#m.liveness.ownTag;
        u32[w + FF_KIND / 4] = KIND_FIFO_CHUNK;
        u32[w + FC_FIFO / 4] = fifo;
        Atomics.store(u32, w + FF_REFCOUNT / 4, 1);
        Atomics.store(u32, w + FF_ALLOC_SEQ / 4, DATA_CHUNK_SEQ);
        Atomics.store(u32, w + FF_STATE / 4, FIFO_STATE_LIVE);
        this.#journal(JOURNAL_GROW, chunk, sizeClass, word);
        Atomics.store(u32, word >>> 2, chunk);
      }
      return count;
    } finally {
      this.#unlock();
    }
  }

  /** The size class of `chunk` if it is a live data chunk of the chunked fifo at `fifo` (a word read from its table); -1 if not. */
  #dataChunkClass(chunk: number, fifo: number): number {
    if (!this.isChunkStart(chunk)) return -1;
    const sizeClass = Atomics.load(this.#u32, (chunk + FF_CLASS) >>> 2);
    return sizeClass <= MAX_CHUNK_CLASS && this.#isDataChunk(chunk, sizeClass, fifo) ? sizeClass : -1;
  }

  /**
   * Puts the data chunks named by `values[0..count)` (offsets with a table word's flag bits),
   * held in the table or hand words `words[0..count)` of the chunked fifo at `fifo` (allocation
   * `seq`), back on their list and clears the words, under one hold of the lock. A word that
   * holds something else by now is left alone (the producer took the chunk back, or the fifo
   * was freed and its chunks with it).
   */
  dropChunks(fifo: number, seq: number, words: Uint32Array, values: Uint32Array, count: number): void {
    const u32 = this.#u32;
    this.#lock();
    try {
      if (!this.#isChunkedFifo(fifo, seq)) return;
      for (let i = 0; i < count; i++) {
        const word = words[i];
        const value = values[i];
        if (!this.#isWord(word) || Atomics.load(u32, word >>> 2) !== value) continue;
        this.#dropLocked(fifo, word, tableChunk(value));
      }
    } finally {
      this.#unlock();
    }
  }

  /**
   * Settles the producer's hand word `hand` of the chunked fifo at `fifo` (allocation `seq`),
   * found set when a producer starts a step (the one that set it died between its claim and
   * the new table word): cleared when the chunk is in a table word of the fifo (the move was
   * done, or never happened), else the chunk, if still the fifo's, goes back to its list.
   */
  settleHand(fifo: number, seq: number, hand: number): void {
    const u32 = this.#u32;
    this.#lock();
    try {
      if (!this.#isChunkedFifo(fifo, seq) || hand !== fifo + FF_PRODUCER_HAND) return;
      const chunk = Atomics.load(u32, hand >>> 2);
      if (chunk === 0) return;
      const slots = this.#tableSlots(fifo, Atomics.load(u32, (fifo + FF_CLASS) >>> 2));
      for (let i = 0; i < slots; i++) {
        if (tableChunk(Atomics.load(u32, chunkTableWord(fifo, i))) === chunk) {
          Atomics.store(u32, hand >>> 2, 0);
          return;
        }
      }
      if (this.#dataChunkClass(chunk, fifo) >= 0) this.#dropLocked(fifo, hand, chunk);
      else Atomics.store(u32, hand >>> 2, 0);
    } finally {
      this.#unlock();
    }
  }

  #notItsChunk(fifo: number, word: number, chunk: number): never {
    this.#corrupt(`table word ${word} of chunked fifo ${fifo} names ${chunk}, which is not one of its chunks`);
  }

  /** Puts `chunk`, held in the table word `word` of the fifo at `fifo`, back on its list (under the lock). */
  #dropLocked(fifo: number, word: number, chunk: number): void {
    const sizeClass = this.#dataChunkClass(chunk, fifo);
    if (sizeClass < 0) this.#notItsChunk(fifo, word, chunk);
    this.#journal(JOURNAL_DROP, chunk, sizeClass, word);
    this.#makeFree(chunk);
    this.#push(sizeClass, chunk);
    Atomics.store(this.#u32, word >>> 2, 0);
  }

  /**
   * Puts every data chunk in the table of the chunked fifo at `fifo` (a chunk of `sizeClass`)
   * back on its list, clearing the table; words that name no chunk of this fifo are cleared and
   * nothing else is touched. Each chunk is listed before its word is cleared, so a repeat
   * (`recovering`, after a holder died in here) finishes the job: it also lists a chunk already
   * marked free but not on its list.
   */
  #dropTable(fifo: number, sizeClass: number, recovering = false): void {
    const slots = this.#tableSlots(fifo, sizeClass);
    for (let i = 0; i < slots; i++) this.#dropWord(fifo, chunkTableWord(fifo, i), recovering);
    // The producer's hand last: a chunk also in a table word was given back with it just now.
    this.#dropWord(fifo, (fifo + FF_PRODUCER_HAND) >>> 2, recovering);
  }

  /**
   * The table words of the chunked fifo at `fifo`, a chunk of `sizeClass`, as its header says,
   * never past the chunk's end (a peer's words); 0 when it has no chunks.
   */
  #tableSlots(fifo: number, sizeClass: number): number {
    const bytes = Atomics.load(this.#u32, (fifo + FF_CHUNK_BYTES) >>> 2);
    const capacity = Atomics.load(this.#u32, (fifo + FF_CAPACITY) >>> 2);
    if (bytes === 0 || sizeClass >= SIZE_CLASSES) return 0;
    return Math.min(Math.floor(capacity / bytes), classBytes(sizeClass) / CHUNK_TABLE_STRIDE);
  }

  /** Gives back the chunk a table or hand word (index `w`) of the fifo names, if it is the fifo's, and clears the word. */
  #dropWord(fifo: number, w: number, recovering: boolean): void {
    const u32 = this.#u32;
    const value = Atomics.load(u32, w);
    if (value === 0) return;
    const chunk = tableChunk(value);
    if (this.isChunkStart(chunk)) { // else a scribbled word: nothing of ours to give back
      const chunkClass = Atomics.load(u32, (chunk + FF_CLASS) >>> 2);
      const ours = chunkClass <= MAX_CHUNK_CLASS &&
        (this.#isDataChunk(chunk, chunkClass, fifo) ||
          (recovering && this.#isChunkOf(chunk, chunkClass, FIFO_STATE_FREE) &&
            Atomics.load(u32, (chunk + FC_FIFO) >>> 2) === fifo && !this.#onList(chunkClass, chunk)));
      if (ours) {
        this.#makeFree(chunk);
        this.#push(chunkClass, chunk);
      }
    }
    Atomics.store(u32, w, 0);
  }

  /** Carves up to `count` chunks of a class onto its freelist; returns how many. */
  preallocateChunks(sizeClass: number, count: number): number {
    return this.#locked(() => this.#carveOnto(sizeClass, count));
  }

  #makeLive(offset: number, size: number, list: FifoList, kind: number, init?: (offset: number) => void): void {
    const u32 = this.#u32;
    const w = offset >>> 2;
    // Zero everything from line 0's user fields through the signalling line: a reused fifo
    // starts like a new one.
    u32.fill(0, w + FF_LIST / 4, w + FIFO_HEADER_SIZE / 4);
    u32[w + FF_CAPACITY / 4] = size;
    u32[w + FF_LIST / 4] = FIFO_LIST_CODES[list];
    u32[w + FF_NEXT_FREE / 4] = 0;
    u32[w + FF_OWNER / 4] = this.#m.liveness.ownTag;
    u32[w + FF_KIND / 4] = kind;
    init?.(offset);
    let seq = (Atomics.add(u32, FS_ALLOC_SEQ >>> 2, 1) + 1) >>> 0;
    if (seq === 0) seq = (Atomics.add(u32, FS_ALLOC_SEQ >>> 2, 1) + 1) >>> 0;
    Atomics.store(u32, w + FF_REFCOUNT / 4, 1);
    Atomics.store(u32, w + FF_ALLOC_SEQ / 4, seq);
    Atomics.store(u32, w + FF_STATE / 4, FIFO_STATE_LIVE);
  }

  /** Checks that `offset` is the live fifo of allocation `seq`; returns its class. */
  #checkLive(offset: number, seq: number): number {
    const sizeClass = Atomics.load(this.#u32, (offset + FF_CLASS) >>> 2);
    if (sizeClass >= SIZE_CLASSES || !this.#isChunkOf(offset, sizeClass, FIFO_STATE_LIVE)) {
      throw new SegmentError("freed", `fifo at offset ${offset} of segment "${this.#m.name}" is not allocated`);
    }
    if (Atomics.load(this.#u32, (offset + FF_ALLOC_SEQ) >>> 2) !== seq) {
      throw new SegmentError(
        "freed",
        `fifo at offset ${offset} of segment "${this.#m.name}" was freed and reallocated`,
      );
    }
    return sizeClass;
  }

  /** Adds a reference to the live fifo of allocation `seq`. Returns the new count. */
  retain(offset: number, seq: number): number {
    const word = (offset + FF_REFCOUNT) >>> 2;
    for (;;) {
      this.#checkLive(offset, seq);
      const count = Atomics.load(this.#u32, word);
      if (count === 0 || count === 0xffff_ffff) this.#corrupt(`fifo at ${offset} has refcount ${count}`);
      if (Atomics.compareExchange(this.#u32, word, count, count + 1) === count) return count + 1;
    }
  }

  /**
   * Drops a reference to the live fifo of allocation `seq`; the last one puts the fifo back on
   * its freelist. True when it was freed.
   */
  release(offset: number, seq: number): boolean {
    const word = (offset + FF_REFCOUNT) >>> 2;
    for (;;) {
      const sizeClass = this.#checkLive(offset, seq);
      const count = Atomics.load(this.#u32, word);
      if (count === 0) this.#corrupt(`live fifo at ${offset} has no references`);
      if (count > 1) {
        if (Atomics.compareExchange(this.#u32, word, count, count - 1) === count) return false;
        continue;
      }
      const freed = this.#locked(() => {
        this.#checkLive(offset, seq);
        const chunked = Atomics.load(this.#u32, (offset + FF_CHUNK_BYTES) >>> 2) !== 0 &&
          Atomics.load(this.#u32, (offset + FF_KIND) >>> 2) === KIND_FIFO;
        this.#journal(chunked ? JOURNAL_FREE_CHUNKED : JOURNAL_FREE, offset, sizeClass);
        if (Atomics.compareExchange(this.#u32, word, 1, 0) !== 1) return false; // retained meanwhile
        if (chunked) this.#dropTable(offset, sizeClass);
        this.#makeFree(offset);
        this.#push(sizeClass, offset);
        return true;
      });
      if (freed) return true;
    }
  }

  /**
   * Carves up to `n` rx/tx pairs onto the freelists, only whole pairs, and from then on
   * allocates only from them; returns how many could not be made.
   */
  preallocatePairs(rxSize: number, txSize: number, n: number): number {
    const rxClass = classOf(rxSize);
    const txClass = classOf(txSize);
    return this.#locked(() => {
      const room = this.#m.size - this.bump();
      const fit = Math.min(n, Math.floor(room / (chunkBytes(rxClass) + chunkBytes(txClass))));
      for (let i = 0; i < fit; i++) {
        this.#carveOnto(rxClass, 1);
        this.#carveOnto(txClass, 1);
      }
      Atomics.or(this.#u32, FS_FLAGS >>> 2, FS_FLAG_PREALLOCATED);
      return n - fit;
    });
  }

  /** Fifos on one class's freelist. */
  freeCount(sizeClass: number): number {
    return this.#locked(() => this.#list(sizeClass).length);
  }

  /** Every chunk below the bump, in address order. */
  chunks(): ChunkInfo[] {
    this.#extend();
    const u32 = this.#u32;
    const out: ChunkInfo[] = [];
    for (let i = 0; i < this.#walked; i++) {
      const offset = this.#starts[i];
      const w = offset >>> 2;
      const length = Atomics.load(u32, w + FF_CHUNK_LENGTH / 4);
      const sizeClass = Atomics.load(u32, w + FF_CLASS / 4);
      const state = Atomics.load(u32, w + FF_MAGIC / 4) === FIFO_MAGIC && sizeClass < SIZE_CLASSES &&
          chunkBytes(sizeClass) === length
        ? Atomics.load(u32, w + FF_STATE / 4)
        : 0;
      out.push({ offset, length, state, sizeClass: state === 0 ? -1 : sizeClass });
    }
    return out;
  }

  /** Offsets of the live chunks of a kind (any kind when undefined), in allocation order. */
  liveFifos(kind?: number): number[] {
    const u32 = this.#u32;
    return this.chunks()
      .filter((c) =>
        c.state === FIFO_STATE_LIVE && (kind === undefined || Atomics.load(u32, (c.offset + FF_KIND) >>> 2) === kind)
      )
      .map((c) => ({ offset: c.offset, seq: u32[(c.offset + FF_ALLOC_SEQ) >>> 2] }))
      .sort((a, b) => a.seq - b.seq)
      .map((c) => c.offset);
  }

  /**
   * The allocation number of the chunk at `offset` (a chunk start the index gave) while it is
   * live and of `kind`; else 0.
   */
  liveSeq(offset: number, kind: number): number {
    const w = offset >>> 2;
    const u32 = this.#u32;
    if (Atomics.load(u32, w + FF_STATE / 4) !== FIFO_STATE_LIVE || Atomics.load(u32, w + FF_KIND / 4) !== kind) {
      return 0;
    }
    return Atomics.load(u32, w + FF_ALLOC_SEQ / 4);
  }

  /** Whether `offset` is the start of a live fifo: a binary search of the index. */
  isLiveFifo(offset: number): boolean {
    // Inside the segment first: a header past its end would be read from outside the view (an
    // engine error), and one 2^32 bytes on would alias a real fifo's words.
    if (!Number.isSafeInteger(offset) || offset < FIFO_AREA_START || offset + FIFO_HEADER_SIZE > this.#m.size) {
      return false;
    }
    const sizeClass = Atomics.load(this.#u32, (offset + FF_CLASS) >>> 2);
    return sizeClass < SIZE_CLASSES && this.#isChunkOf(offset, sizeClass, FIFO_STATE_LIVE);
  }

  /**
   * Live fifos whose allocating process is dead, with their allocation numbers, decided under
   * the lock (outside it a fifo being freed by its live owner looks live with no owner).
   */
  orphans(kind?: number): { offset: number; seq: number }[] {
    const liveness = this.#m.liveness;
    return this.#locked(() =>
      this.liveFifos(kind)
        .filter((offset) => !liveness.isAlive(Atomics.load(this.#u32, (offset + FF_OWNER) >>> 2)))
        .map((offset) => ({ offset, seq: Atomics.load(this.#u32, (offset + FF_ALLOC_SEQ) >>> 2) }))
    );
  }

  /** The pid of the process that allocated the fifo at `offset` (0 when unknown). */
  ownerPid(offset: number): number {
    return this.#m.liveness.pidOf(Atomics.load(this.#u32, (offset + FF_OWNER) >>> 2));
  }

  /** Live chunks of a kind, counted by walking the chunks. */
  activeCount(kind: number): number {
    return this.liveFifos(kind).length;
  }

  /** Bytes not held by live fifos: never carved, plus the chunks on freelists. */
  freeBytes(): number {
    const { free, cached } = this.memory();
    return free + cached;
  }

  /** Bytes never carved (`free`) and bytes in chunks on the freelists (`cached`), read under the lock. */
  memory(): { free: number; cached: number } {
    return this.#locked(() => {
      let cached = 0;
      for (let c = 0; c < SIZE_CLASSES; c++) cached += this.#list(c).length * chunkBytes(c);
      return { free: this.#m.size - this.bump(), cached };
    });
  }

  /**
   * Checks the books under the lock (after repairing what a dead holder left): every chunk is
   * either live with references or on its class's freelist exactly once, and every live data
   * chunk of a chunked fifo sits in exactly one word of its fifo's table (or only in its
   * producer's hand, on its way between two). Meant for quiet moments: a chunk changing hands
   * without the lock while it runs may be reported.
   */
  audit(): AllocatorAudit {
    return this.#locked(() => {
      const onList = new Map<number, number>();
      for (let c = 0; c < SIZE_CLASSES; c++) {
        for (const offset of this.#list(c)) onList.set(offset, (onList.get(offset) ?? 0) + 1);
      }
      const lost: number[] = [];
      let live = 0;
      let free = 0;
      const chunks = this.chunks();
      const u32 = this.#u32;
      // Data chunks of chunked fifos: each must sit in exactly one table word of its fifo, or in its producer hand.
      const tabled = new Map<number, number>();
      for (const chunk of chunks) {
        const at = chunk.offset;
        if (
          chunk.state !== FIFO_STATE_LIVE || Atomics.load(u32, (at + FF_KIND) >>> 2) !== KIND_FIFO ||
          Atomics.load(u32, (at + FF_CHUNK_BYTES) >>> 2) === 0
        ) continue;
        const slots = this.#tableSlots(at, sizeClassOfLength(chunk.length));
        for (let i = 0; i < slots; i++) {
          const value = Atomics.load(u32, chunkTableWord(at, i));
          const data = tableChunk(value);
          if (data === 0) continue;
          // A word must name a live data chunk of this fifo (not one on a freelist, not another's).
          if (this.#dataChunkClass(data, at) >= 0) tabled.set(data, (tabled.get(data) ?? 0) + 1);
          else lost.push(data);
        }
        // A chunk only in the producer's hand is on its way between two table words (its
        // mover died there): still the fifo's, and settled by the next producer or the free.
        const hand = Atomics.load(u32, (at + FF_PRODUCER_HAND) >>> 2);
        if (hand !== 0 && !tabled.has(hand) && this.#dataChunkClass(hand, at) >= 0) tabled.set(hand, 1);
      }
      for (const chunk of chunks) {
        const refs = Atomics.load(u32, (chunk.offset + FF_REFCOUNT) >>> 2);
        const seq = Atomics.load(u32, (chunk.offset + FF_ALLOC_SEQ) >>> 2);
        const listed = onList.get(chunk.offset) ?? 0;
        const isData = Atomics.load(u32, (chunk.offset + FF_KIND) >>> 2) === KIND_FIFO_CHUNK;
        if (chunk.state === FIFO_STATE_LIVE && isData) {
          if (tabled.get(chunk.offset) === 1 && listed === 0) live++;
          else lost.push(chunk.offset);
        } else if (chunk.state === FIFO_STATE_LIVE && refs > 0 && seq !== 0 && listed === 0) live++;
        else if (chunk.state === FIFO_STATE_FREE && listed === 1) free++;
        else lost.push(chunk.offset);
      }
      return { chunks: chunks.length, live, free, lost };
    });
  }
}

function sizeClassOfLength(length: number): number {
  for (let c = 0; c < SIZE_CLASSES; c++) if (chunkBytes(c) === length) return c;
  throw new SegmentError("corrupt", `no size class has chunks of ${length} bytes`);
}

/** Checks a fifo size and returns its class. */
export function classOf(size: number): number {
  if (!Number.isSafeInteger(size) || size < 1 || size > classBytes(SIZE_CLASSES - 1)) {
    throw new RangeError(`fifo size must be an integer from 1 to ${classBytes(SIZE_CLASSES - 1)}, got ${size}`);
  }
  let c = 0;
  while (classBytes(c) < size) c++;
  return c;
}
