/**
 * The fifo allocator of a segment, shared by every process attached to it and lock-free:
 *
 * - Chunks (a fifo header and its data) are carved from a bump region. A chunk is claimed by a
 *   compare-and-swap of its first word (the claim word, at the bump offset) from 0 to its
 *   length; then the bump offset moves past it. Whoever finds a claimed word at the bump helps
 *   move the bump, so a process that dies between the two steps stalls nobody: at worst its
 *   chunk is leaked. Memory past the bump is never written except by a claim, so it stays zero.
 * - Freed fifos go onto per-class freelists: lock-free stacks whose 64-bit head packs the first
 *   fifo's offset (low 32 bits) with a tag bumped on every change (high 32 bits) against ABA.
 *
 * Every offset read from shared memory is checked against the segment before it is followed.
 *
 * @module
 */

import { SegmentError } from "./errors.ts";
import type { FifoList, FifoMemory } from "./fifo.ts";
import {
  chunkBytes,
  classBytes,
  FF_ALLOC_SEQ,
  FF_CAPACITY,
  FF_CHUNK_LENGTH,
  FF_CLASS,
  FF_LIST,
  FF_MAGIC,
  FF_NEXT_FREE,
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
  SIZE_CLASSES,
} from "./layout.ts";

/** Memory the allocator works on: the fifo views plus a 64-bit view for the freelist heads. */
export interface AllocatorMemory extends FifoMemory {
  readonly u64: BigUint64Array;
}

/** A chunk seen while walking the fifo area. */
export interface ChunkInfo {
  readonly offset: number;
  readonly length: number;
  /** FIFO_STATE_FREE, FIFO_STATE_LIVE, or 0 for a chunk whose claimer died before formatting it. */
  readonly state: number;
  readonly sizeClass: number;
}

/** Fifos carved at once when a class's freelist is empty: about 64 KiB worth, 1 to 16 of them. */
function batchFor(sizeClass: number): number {
  return Math.max(1, Math.min(16, Math.floor(65536 / chunkBytes(sizeClass))));
}

const TAG_ONE = 1n << 32n;
const LOW32 = 0xffff_ffffn;

/** Allocates and frees fifos in one segment's memory. */
export class FifoAllocator {
  readonly #m: AllocatorMemory;
  constructor(memory: AllocatorMemory) {
    this.#m = memory;
  }

  #corrupt(what: string): never {
    throw new SegmentError("corrupt", `segment "${this.#m.name}": ${what}`);
  }

  /** The bump offset, checked. */
  bump(): number {
    const b = Atomics.load(this.#m.u32, FS_BUMP >>> 2);
    if (b < FIFO_AREA_START || b > this.#m.size || b % 64 !== 0) this.#corrupt(`bump offset ${b} is out of bounds`);
    return b;
  }

  /** Claims `length` bytes at the bump; returns the chunk's offset, or 0 when there is no room. */
  #claim(length: number): number {
    const u32 = this.#m.u32;
    for (;;) {
      const b = this.bump();
      if (b + length > this.#m.size) return 0;
      const claimed = Atomics.load(u32, b >>> 2);
      if (claimed !== 0) {
        // Someone claimed this chunk and has not moved the bump yet (or died): help.
        if (claimed % 64 !== 0 || claimed < FIFO_HEADER_SIZE || b + claimed > this.#m.size) {
          this.#corrupt(`claim word ${claimed} at ${b} is out of bounds`);
        }
        Atomics.compareExchange(u32, FS_BUMP >>> 2, b, b + claimed);
        continue;
      }
      if (Atomics.compareExchange(u32, b >>> 2, 0, length) === 0) {
        Atomics.compareExchange(u32, FS_BUMP >>> 2, b, b + length);
        return b;
      }
    }
  }

  /** Claims and formats a free chunk of a class (not yet on any list); 0 when there is no room. */
  #carve(sizeClass: number): number {
    const offset = this.#claim(chunkBytes(sizeClass));
    if (offset === 0) return 0;
    const u32 = this.#m.u32;
    const w = offset >>> 2;
    u32[w + FF_CLASS / 4] = sizeClass;
    u32[w + FF_STATE / 4] = FIFO_STATE_FREE;
    Atomics.store(u32, w + FF_MAGIC / 4, FIFO_MAGIC);
    return offset;
  }

  /** Checks that `offset` is a formatted chunk of `sizeClass` inside the carved area. */
  #isChunkOf(offset: number, sizeClass: number): boolean {
    const u32 = this.#m.u32;
    if (offset < FIFO_AREA_START || offset % 64 !== 0 || offset + chunkBytes(sizeClass) > this.bump()) return false;
    const w = offset >>> 2;
    return u32[w + FF_MAGIC / 4] === FIFO_MAGIC && u32[w + FF_CLASS / 4] === sizeClass &&
      u32[w + FF_CHUNK_LENGTH / 4] === chunkBytes(sizeClass);
  }

  #push(sizeClass: number, offset: number): void {
    const heads = this.#m.u64;
    const slot = (FS_FREELISTS >>> 3) + sizeClass;
    for (;;) {
      const head = Atomics.load(heads, slot);
      Atomics.store(this.#m.u32, (offset + FF_NEXT_FREE) >>> 2, Number(head & LOW32));
      const next = ((head & ~LOW32) + TAG_ONE) & ~LOW32 | BigInt(offset);
      if (Atomics.compareExchange(heads, slot, head, BigInt.asUintN(64, next)) === head) return;
    }
  }

  #pop(sizeClass: number): number {
    const heads = this.#m.u64;
    const slot = (FS_FREELISTS >>> 3) + sizeClass;
    for (;;) {
      const head = Atomics.load(heads, slot);
      const offset = Number(head & LOW32);
      if (offset === 0) return 0;
      // Check the offset before following it, and the link it holds before trusting it.
      const next = this.#isChunkOf(offset, sizeClass) ? Atomics.load(this.#m.u32, (offset + FF_NEXT_FREE) >>> 2) : -1;
      const valid = next === 0 || (next > 0 && this.#isChunkOf(next, sizeClass));
      if (!valid) {
        // Another process may have popped it meanwhile; only an unchanged head is corruption.
        if (Atomics.load(heads, slot) === head) this.#corrupt(`freelist ${sizeClass} holds a bad offset ${offset}`);
        continue;
      }
      const replaced = BigInt.asUintN(64, ((head & ~LOW32) + TAG_ONE) & ~LOW32 | BigInt(next));
      if (Atomics.compareExchange(heads, slot, head, replaced) === head) return offset;
    }
  }

  get preallocated(): boolean {
    return (Atomics.load(this.#m.u32, FS_FLAGS >>> 2) & FS_FLAG_PREALLOCATED) !== 0;
  }

  /** Takes a chunk for a fifo of `size` bytes and makes it live; returns its offset or 0. */
  alloc(size: number, list: FifoList): number {
    const sizeClass = classOf(size);
    let offset = this.#pop(sizeClass);
    if (offset === 0 && !this.preallocated) {
      offset = this.#carve(sizeClass);
      if (offset !== 0) {
        const extras: number[] = [];
        for (let i = 1; i < batchFor(sizeClass); i++) {
          const extra = this.#carve(sizeClass);
          if (extra === 0) break;
          extras.push(extra);
        }
        // Pushed highest first, so the batch is handed out in address order.
        for (let i = extras.length - 1; i >= 0; i--) this.#push(sizeClass, extras[i]);
      }
    }
    if (offset === 0) return 0;
    this.#format(offset, size, list);
    return offset;
  }

  #format(offset: number, size: number, list: FifoList): void {
    const u32 = this.#m.u32;
    const w = offset >>> 2;
    // Zero everything from line 0's user fields through the signalling line: a reused fifo
    // starts like a new one.
    u32.fill(0, w + FF_LIST / 4, w + FIFO_HEADER_SIZE / 4);
    u32[w + FF_CAPACITY / 4] = size;
    u32[w + FF_LIST / 4] = FIFO_LIST_CODES[list];
    u32[w + FF_NEXT_FREE / 4] = 0;
    u32[w + FF_ALLOC_SEQ / 4] = (Atomics.add(this.#m.u32, FS_ALLOC_SEQ >>> 2, 1) + 1) >>> 0;
    Atomics.store(u32, w + FF_REFCOUNT / 4, 1);
    Atomics.store(u32, w + FF_STATE / 4, FIFO_STATE_LIVE);
  }

  /** Adds a reference to a live fifo. */
  retain(offset: number): number {
    this.#checkLive(offset);
    return Atomics.add(this.#m.u32, (offset + FF_REFCOUNT) >>> 2, 1) + 1;
  }

  #checkLive(offset: number): number {
    const u32 = this.#m.u32;
    const sizeClass = u32[(offset + FF_CLASS) >>> 2];
    if (sizeClass >= SIZE_CLASSES || !this.#isChunkOf(offset, sizeClass)) {
      throw new RangeError(`no fifo at offset ${offset} of segment "${this.#m.name}"`);
    }
    if (Atomics.load(u32, (offset + FF_STATE) >>> 2) !== FIFO_STATE_LIVE) {
      throw new RangeError(`fifo at offset ${offset} of segment "${this.#m.name}" is not allocated`);
    }
    return sizeClass;
  }

  /** Drops a reference; the last one puts the fifo back on its freelist. True when it was freed. */
  release(offset: number): boolean {
    const sizeClass = this.#checkLive(offset);
    const u32 = this.#m.u32;
    const word = (offset + FF_REFCOUNT) >>> 2;
    for (;;) {
      const count = Atomics.load(u32, word);
      if (count === 0) throw new RangeError(`fifo at offset ${offset} has no references left`);
      if (Atomics.compareExchange(u32, word, count, count - 1) !== count) continue;
      if (count > 1) return false;
      break;
    }
    Atomics.store(u32, (offset + FF_STATE) >>> 2, FIFO_STATE_FREE);
    this.#push(sizeClass, offset);
    return true;
  }

  /** Carves up to `n` rx/tx pairs onto the freelists; returns how many could not be made. */
  preallocatePairs(rxSize: number, txSize: number, n: number): number {
    const rxClass = classOf(rxSize);
    const txClass = classOf(txSize);
    let made = 0;
    while (made < n) {
      const rx = this.#carve(rxClass);
      if (rx === 0) break;
      const tx = this.#carve(txClass);
      if (tx === 0) {
        this.#push(rxClass, rx);
        break;
      }
      this.#push(rxClass, rx);
      this.#push(txClass, tx);
      made++;
    }
    Atomics.or(this.#m.u32, FS_FLAGS >>> 2, FS_FLAG_PREALLOCATED);
    return n - made;
  }

  /** Fifos on one class's freelist (walk bounded by what the segment could hold). */
  freeCount(sizeClass: number): number {
    const limit = Math.floor(this.#m.size / chunkBytes(sizeClass));
    let offset = Number(Atomics.load(this.#m.u64, (FS_FREELISTS >>> 3) + sizeClass) & LOW32);
    let count = 0;
    while (offset !== 0) {
      if (!this.#isChunkOf(offset, sizeClass) || ++count > limit) this.#corrupt(`freelist ${sizeClass} is broken`);
      offset = Atomics.load(this.#m.u32, (offset + FF_NEXT_FREE) >>> 2);
    }
    return count;
  }

  /** Every chunk below the bump, in address order. */
  chunks(): ChunkInfo[] {
    const u32 = this.#m.u32;
    const end = this.bump();
    const out: ChunkInfo[] = [];
    for (let offset = FIFO_AREA_START; offset < end;) {
      const length = Atomics.load(u32, offset >>> 2);
      if (length < FIFO_HEADER_SIZE || length % 64 !== 0 || offset + length > end) {
        this.#corrupt(`chunk at ${offset} has a bad length ${length}`);
      }
      const w = offset >>> 2;
      const formatted = Atomics.load(u32, w + FF_MAGIC / 4) === FIFO_MAGIC;
      const sizeClass = u32[w + FF_CLASS / 4];
      const state = formatted && sizeClass < SIZE_CLASSES && chunkBytes(sizeClass) === length
        ? Atomics.load(u32, w + FF_STATE / 4)
        : 0;
      out.push({ offset, length, state, sizeClass: state === 0 ? -1 : sizeClass });
      offset += length;
    }
    return out;
  }

  /** Offsets of the live fifos, in allocation order. */
  liveFifos(): number[] {
    const u32 = this.#m.u32;
    return this.chunks()
      .filter((c) => c.state === FIFO_STATE_LIVE)
      .map((c) => ({ offset: c.offset, seq: u32[(c.offset + FF_ALLOC_SEQ) >>> 2] }))
      .sort((a, b) => a.seq - b.seq)
      .map((c) => c.offset);
  }

  /** Whether `offset` is the start of a live fifo, found by walking the chunks. */
  isLiveFifo(offset: number): boolean {
    return this.chunks().some((c) => c.offset === offset && c.state === FIFO_STATE_LIVE);
  }

  /**
   * Fifos in use, counted by walking the chunks: a shared counter would drift whenever a
   * process died between changing a fifo's state and the counter.
   */
  activeCount(): number {
    return this.chunks().filter((c) => c.state === FIFO_STATE_LIVE).length;
  }

  /** Bytes not held by live fifos: never carved, plus the chunks on freelists. */
  freeBytes(): number {
    let bytes = this.#m.size - this.bump();
    for (let c = 0; c < SIZE_CLASSES; c++) bytes += this.freeCount(c) * chunkBytes(c);
    return bytes;
  }
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
