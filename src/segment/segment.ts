/**
 * A segment as one process sees it: a mapping (or a SharedArrayBuffer), views over its single
 * ArrayBuffer, and the fifo allocator working in it.
 *
 * @module
 */

import type { Mapping } from "../../ffi/os.ts";
import { type AllocatorAudit, classOf, FifoAllocator } from "./allocator.ts";
import { SegmentError } from "../errors.ts";
import { Fifo, type FifoList } from "../fifo/fifo.ts";
import type { ChunkBatch } from "../fifo/fifo_chunks.ts";
import {
  CHUNK_TABLE_STRIDE,
  chunkClassOf,
  chunkTableWord,
  classBytes,
  EVENTS_BYTES,
  FF_CAPACITY,
  FF_CHUNK_BYTES,
  FF_KIND,
  FF_SIZE,
  FF_SPARE_CHUNKS,
  FIFO_HEADER_SIZE,
  FS_CREATOR_TAG,
  KIND_EVENTS,
  KIND_FIFO,
  KIND_FIFO_CHUNK,
  KIND_MESSAGE_QUEUE,
  KIND_MESSAGE_RING,
  MAX_FIFO_SIZE,
  MAX_SPARE_CHUNKS,
  MIN_CLASS_BYTES,
  SIZE_CLASSES,
  WAITER_AFTER_SEQ,
} from "../layout.ts";
import {
  formatMessageQueue,
  MessageQueue,
  messageQueueBytes,
  type MessageQueueSpec,
  ringsOf,
} from "../queue/message_queue.ts";
import type { SegmentType } from "./segment_header.ts";
import type { Signaller } from "../wake/signaller.ts";
import type { Liveness } from "./process_table.ts";
import type { Waiters } from "../wake/waiters.ts";
import type { Sleeper } from "../wake/sleeper.ts";
import { checkRingCapacity, formatMessageRing, MessageRing, ringBytes } from "../ring/message_ring.ts";

/** How `segment.allocFifo` shapes a fifo. */
export interface FifoOptions {
  /**
   * Memory in chunks that follows the fill level (VPP's chunked fifos): taken from the segment
   * as data arrives and given back as it is read, down to one chunk; `setSize` changes the size
   * later. A new chunked fifo holds no chunk until its first write.
   */
  readonly chunked?: boolean;
  /**
   * Bytes of each chunk, a power of two from 4 KiB to 4 MiB. Default, as VPP steps: an eighth
   * of the largest size, at least 4 KiB and at most 64 KiB.
   */
  readonly chunkSize?: number;
  /** The largest size `setSize` may set (default: `size`), rounded up to whole chunks. */
  readonly maxSize?: number;
  /**
   * Chunks the reader leaves in place for the writer beyond what is stored, at most 64 (the
   * default: all the fifo needed lately, for rings of up to 65 chunks). A writer that follows
   * the reader reuses them without the segment's allocator. They go back, but for one chunk,
   * when the reader waits on the drained fifo, finds it empty for 50 ms, or finds it
   * closed. 0 is VPP's
   * rule: every chunk read past goes back at once, and a drained fifo keeps one chunk.
   */
  readonly spareChunks?: number;
}

/** What `segment.info()` reports. */
export interface SegmentInfo {
  /** Where the memory comes from. */
  readonly type: SegmentType;
  /** The segment's name. */
  readonly name: string;
  /** Bytes, whole pages. */
  readonly size: number;
  /** The pid that created the segment. */
  readonly creatorPid: number;
  /** True in the process (and SegmentMain) that created the segment. */
  readonly createdHere: boolean;
  /** Position in its SegmentMain's pool. */
  readonly index: number;
  /** For a memfd segment created here: the fd another process can open as /proc/PID/fd/FD. */
  readonly fd?: number;
  /** Fifos in use. */
  readonly activeFifos: number;
  /** Message queues in use. */
  readonly messageQueues: number;
  /** Message rings in use. */
  readonly messageRings: number;
  /** Data chunks held by chunked fifos. */
  readonly fifoChunks: number;
  /** Fifos waiting on freelists, all classes. */
  readonly freeFifos: number;
  /** Bytes not held by live fifos. */
  readonly freeBytes: number;
  /** True once `preallocateFifoPairs` ran: only preallocated fifos are handed out. */
  readonly preallocated: boolean;
}

/** How full a segment is, as VPP's fifo segments report it (see `segment.memoryStatus()`). */
export interface MemoryStatus {
  /** Bytes of the segment, headers included. */
  readonly size: number;
  /** Bytes never handed out yet (past the allocator's bump). */
  readonly free: number;
  /** Bytes in freed chunks waiting on the freelists for reuse. */
  readonly cached: number;
  /** `(size - free - cached) * 100 / size`: the headers and every live fifo, queue and ring. */
  readonly usedPercent: number;
  /** "high" at or past the high watermark, "low" at or past the low one, else "none". */
  readonly pressure: MemoryPressure;
}

/** A segment's memory pressure level. */
export type MemoryPressure = "none" | "low" | "high";

/** The percentages at which a segment's memory pressure turns "low" and "high". */
export interface MemoryWatermarks {
  /** Default 50. */
  readonly lowPercent: number;
  /** Default 80. */
  readonly highPercent: number;
}

/** @ignore @internal How a segment is handed its memory by its SegmentMain. */
export interface SegmentInit {
  readonly type: SegmentType;
  readonly name: string;
  readonly size: number;
  readonly creatorPid: number;
  readonly createdHere: boolean;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly mapping?: Mapping;
  readonly fd?: number;
  readonly signaller: Signaller;
  readonly liveness: Liveness;
  readonly waiters: Waiters;
  /** A fresh buffer over the segment's memory for views handed to callers. */
  readonly lend: () => ArrayBuffer | SharedArrayBuffer;
  /** Whether a view lies in this segment's memory through any mapping of it in this process. */
  readonly holds: (segment: Segment, view: Uint8Array) => boolean;
  readonly release: (segment: Segment) => void;
  /** Makes the segment's sleeper (asynchronous waits and wake-ups). */
  readonly makeSleeper: (segment: Segment) => Sleeper;
}

/** One shared segment held by a {@link SegmentMain}. Obtain it from `create` or `attach`. */
export class Segment {
  /** Where the memory comes from. */
  readonly type: SegmentType;
  /** The segment's name (without the leading "/" that shm_open sees). */
  readonly name: string;
  /** Bytes, whole pages. */
  readonly size: number;
  /** The pid that created the segment. */
  readonly creatorPid: number;
  /** True where this SegmentMain created it. */
  readonly createdHere: boolean;
  /** @ignore @internal */
  readonly u8: Uint8Array;
  /** @ignore @internal */
  readonly u32: Uint32Array;
  /** @ignore @internal */
  readonly i32: Int32Array;
  /** @ignore @internal */
  readonly u64: BigUint64Array;
  /** @ignore @internal */
  readonly view: DataView;
  /** @ignore @internal The OS mapping (undefined for private segments). */
  readonly mapping: Mapping | undefined;
  /** @ignore @internal The fd this process holds the segment by; its process-slot lock rides on it. Closed on delete. */
  readonly fd: number | undefined;
  /** @ignore @internal Sleep and wake on this segment's words. */
  readonly signaller: Signaller;
  /** @ignore @internal This process's tag in the segment, and the liveness of others. */
  readonly liveness: Liveness;
  /** @ignore @internal Who sleeps on which word (Sync waits). */
  readonly waiters: Waiters;
  /** @ignore @internal Asynchronous waits, and waking other processes' sleepers. */
  readonly sleeper: Sleeper;
  readonly #lend: () => ArrayBuffer | SharedArrayBuffer;
  readonly #holds: (segment: Segment, view: Uint8Array) => boolean;
  #lent: ArrayBuffer | SharedArrayBuffer | undefined;
  #index = -1;
  #deleted = false;
  #watermarks: MemoryWatermarks = Object.freeze({ lowPercent: 50, highPercent: 80 });
  readonly #release: (segment: Segment) => void;
  readonly #allocator: FifoAllocator;

  /** @ignore @internal Segments are made by SegmentMain. */
  constructor(init: SegmentInit) {
    this.type = init.type;
    this.name = init.name;
    this.size = init.size;
    this.creatorPid = init.creatorPid;
    this.createdHere = init.createdHere;
    this.mapping = init.mapping;
    this.fd = init.fd;
    this.signaller = init.signaller;
    this.liveness = init.liveness;
    this.waiters = init.waiters;
    this.#lend = init.lend;
    this.#holds = init.holds;
    this.#release = init.release;
    // Every view derives from the one buffer, and only the first `size` bytes are used.
    this.u8 = new Uint8Array(init.buffer, 0, init.size);
    this.u32 = new Uint32Array(init.buffer, 0, init.size / 4);
    this.i32 = new Int32Array(init.buffer, 0, init.size / 4);
    this.u64 = new BigUint64Array(init.buffer, 0, init.size / 8);
    this.view = new DataView(init.buffer, 0, init.size);
    this.#allocator = new FifoAllocator(this);
    this.sleeper = init.makeSleeper(this);
  }

  /**
   * @ignore @internal The chunk of this process's event ring: `previous` (left by the last holder of
   * our process slot) when it is a live event-ring chunk, else a new one, else 0 (no room).
   */
  eventChunk(previous: number): number {
    if (
      previous !== 0 && this.#allocator.isChunkStart(previous) && this.#allocator.isLiveFifo(previous) &&
      Atomics.load(this.u32, (previous + FF_KIND) >>> 2) === KIND_EVENTS
    ) {
      return previous;
    }
    return this.#allocator.alloc(EVENTS_BYTES, "none", KIND_EVENTS);
  }

  /** Whether the process that created the segment is still alive (always true for a private one). */
  get creatorAlive(): boolean {
    this.#check();
    return this.liveness.isAlive(Atomics.load(this.u32, FS_CREATOR_TAG >>> 2));
  }

  /** Position in the owning SegmentMain's pool. */
  get index(): number {
    return this.#index;
  }

  /** True once deleted: every further use throws. */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** @ignore @internal */
  setIndex(index: number): void {
    this.#index = index;
  }

  /** @ignore @internal The buffer views handed to callers are made over; a new one if a caller detached it. */
  lent(): ArrayBuffer | SharedArrayBuffer {
    const buffer = this.#lent;
    if (buffer !== undefined && !(buffer instanceof ArrayBuffer && buffer.detached)) return buffer;
    return (this.#lent = this.#lend());
  }

  /** @ignore @internal Whether `view` lies in this segment's memory, through any mapping of it here. */
  holds(view: Uint8Array): boolean {
    return this.#holds(this, view);
  }

  /**
   * @ignore @internal Marks the segment deleted (its main unmaps it next), withdraws this process's
   * sleepers from the waiter words (others must not go on waking nobody), and wakes its pending
   * waits, which then fail with "deleted" instead of sleeping on unmapped memory.
   */
  markDeleted(): void {
    this.sleeper.close();
    this.#deleted = true;
    for (const waiterWord of this.waiters.leaveAll()) {
      const seq = waiterWord - WAITER_AFTER_SEQ; // the sequence word a waiter word belongs to
      Atomics.add(this.i32, seq, 1);
      this.signaller.wake(seq * 4);
    }
  }

  #check(): void {
    if (this.#deleted) throw new SegmentError("deleted", `segment "${this.name}" was deleted`);
  }

  /**
   * A new fifo whose capacity is exactly `size` bytes, from the smallest size class that holds
   * it, or null when the segment has no room.
   */
  allocFifo(size: number, list: FifoList = "none", options: FifoOptions = {}): Fifo | null {
    this.#check();
    classOf(size);
    if (list !== "rx" && list !== "tx" && list !== "none") {
      throw new RangeError(`list must be "rx", "tx" or "none", got ${String(list)}`);
    }
    if (options?.chunked) return this.#allocChunked(size, list, options);
    const offset = this.#allocator.alloc(size, list);
    return offset === 0 ? null : this.#fifo(offset);
  }

  #allocChunked(size: number, list: FifoList, options: FifoOptions): Fifo | null {
    const most = options.maxSize ?? size;
    if (!Number.isSafeInteger(most) || most < size) {
      throw new RangeError(`maxSize must be an integer of at least the size ${size}, got ${most}`);
    }
    const chunk = options.chunkSize ??
      Math.min(Math.max(2 ** Math.floor(Math.log2(most / 8)), MIN_CLASS_BYTES), 64 * 1024);
    checkChunkSize(chunk);
    const spare = options.spareChunks ?? MAX_SPARE_CHUNKS;
    if (!Number.isSafeInteger(spare) || spare < 0 || spare > MAX_SPARE_CHUNKS) {
      throw new RangeError(`spareChunks must be an integer from 0 to ${MAX_SPARE_CHUNKS}, got ${spare}`);
    }
    // One chunk more than the largest size: the producer then never reaches the slot the
    // consumer reads in, so a slot the consumer read to its end is always its to give back.
    const ring = Math.ceil(most / chunk) * chunk + chunk;
    if (ring > MAX_FIFO_SIZE) throw new RangeError(`a chunked fifo of ${ring} bytes is too large`);
    const slots = ring / chunk;
    const offset = this.#allocator.alloc(slots * CHUNK_TABLE_STRIDE, list, KIND_FIFO, (at) => {
      const w = at >>> 2;
      this.u32[w + FF_CAPACITY / 4] = ring;
      this.u32[w + FF_CHUNK_BYTES / 4] = chunk;
      this.u32[w + FF_SIZE / 4] = size;
      this.u32[w + FF_SPARE_CHUNKS / 4] = spare;
      this.u32.fill(0, chunkTableWord(at, 0), chunkTableWord(at, slots)); // the table: no chunks
    });
    return offset === 0 ? null : this.#fifo(offset);
  }

  /** @ignore @internal Chunks for a chunked fifo's table words (see `FifoAllocator.growChunks`). */
  growChunks(fifo: number, seq: number, sizeClass: number, batch: ChunkBatch): number {
    return this.#allocator.growChunks(fifo, seq, sizeClass, batch);
  }

  /** @ignore @internal A chunked fifo's chunks given back (see `FifoAllocator.dropChunks`). */
  dropChunks(fifo: number, seq: number, words: Uint32Array, values: Uint32Array, count: number): void {
    this.#allocator.dropChunks(fifo, seq, words, values, count);
  }

  /** @ignore @internal A dead producer's hand settled (see `FifoAllocator.settleHand`). */
  settleHand(fifo: number, seq: number, hand: number): void {
    this.#allocator.settleHand(fifo, seq, hand);
  }

  /**
   * Carves `count` chunks of `chunkSize` bytes (a power of two from 4 KiB to 4 MiB) onto the
   * freelists ahead of need, for chunked fifos (or fifos of that size); returns how many could
   * not be made for want of room.
   */
  preallocateChunks(chunkSize: number, count: number): number {
    this.#check();
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`count must be a non-negative integer, got ${count}`);
    }
    return count - this.#allocator.preallocateChunks(checkChunkSize(chunkSize), count);
  }

  /** A handle over the chunk at `offset`, bounded by where this process's chunk index says it ends. */
  #fifo(offset: number): Fifo {
    return new Fifo(this, offset, this.#allocator.chunkEnd(offset));
  }

  /** Drops a reference to the fifo; the last reference puts it back on its freelist. */
  freeFifo(fifo: Fifo): void {
    this.#check();
    this.#ownFifo(fifo);
    if (!fifo.isLive) throw new SegmentError("freed", `fifo at offset ${fifo.offset} is not allocated`);
    this.#allocator.release(fifo.offset, fifo.allocationSeq);
    fifo.markFreed();
  }

  /** Adds a reference to a fifo, so that it takes one more `freeFifo` to free it. Returns the count. */
  retainFifo(fifo: Fifo): number {
    this.#check();
    this.#ownFifo(fifo);
    if (!fifo.isLive) throw new SegmentError("freed", `fifo at offset ${fifo.offset} is not allocated`);
    return this.#allocator.retain(fifo.offset, fifo.allocationSeq);
  }

  #ownFifo(fifo: Fifo): void {
    if (!(fifo instanceof Fifo)) throw new TypeError("expected a Fifo");
    if (!fifo.isIn(this)) throw new RangeError(`fifo at offset ${fifo.offset} is not in segment "${this.name}"`);
  }

  /**
   * Carves up to `n` pairs of rx and tx fifos onto the freelists and from then on allocates only
   * from them. Returns how many of the `n` pairs could not be made.
   */
  preallocateFifoPairs(rxSize: number, txSize: number, n: number): number {
    this.#check();
    classOf(rxSize);
    classOf(txSize);
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`pair count must be a non-negative integer, got ${n}`);
    return this.#allocator.preallocatePairs(rxSize, txSize, n);
  }

  /** The fifos in use, in allocation order, each as a new Fifo object of this process. */
  fifos(): Fifo[] {
    this.#check();
    return this.#listLive(KIND_FIFO, (offset, end) => new Fifo(this, offset, end));
  }

  /**
   * An object for each live chunk of `kind`, in allocation order. Another process may free (and
   * reuse) a chunk between the walk that found it and the making of its object: a chunk that is
   * not live is left out, as if the walk had come a moment later, and one that changed while its
   * object was made is looked at again (a few times). A chunk that stays the same live allocation
   * and still fails (a header a peer scribbled) throws.
   */
  #listLive<T>(kind: number, make: (offset: number, chunkEnd: number) => T): T[] {
    const made: T[] = [];
    for (const offset of this.#allocator.liveFifos(kind)) {
      for (let tries = 0; tries < 4; tries++) {
        const before = this.#allocator.liveSeq(offset, kind);
        if (before === 0) break;
        try {
          made.push(make(offset, this.#allocator.chunkEnd(offset)));
          break;
        } catch (error) {
          if (this.#allocator.liveSeq(offset, kind) === before) throw error;
        }
      }
    }
    return made;
  }

  /** A Fifo object over the live fifo at `offset` (from another process's `fifo.offset`). */
  fifoAt(offset: number): Fifo {
    this.#check();
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`fifo offset must be a non-negative integer, got ${offset}`);
    }
    if (!this.#allocator.isLiveFifo(offset)) {
      throw new RangeError(`no live fifo at offset ${offset} of segment "${this.name}"`);
    }
    return this.#fifo(offset);
  }

  /**
   * A new message queue (many producers in any processes, one consumer; see {@link MessageQueue})
   * of one ring (`{ slots, slotSize }`) or several (`{ rings: [...] }`), or null when the
   * segment has no room.
   */
  allocMessageQueue(spec: MessageQueueSpec): MessageQueue | null {
    this.#check();
    const rings = ringsOf(spec);
    const bytes = messageQueueBytes(rings);
    if (bytes > classBytes(SIZE_CLASSES - 1)) throw new RangeError(`a message queue of ${bytes} bytes is too large`);
    // Formatted before it is published live: another process's listing never finds it half made.
    const offset = this.#allocator.alloc(
      bytes,
      "none",
      KIND_MESSAGE_QUEUE,
      (at) => formatMessageQueue(this.u32, at + FIFO_HEADER_SIZE, rings),
    );
    if (offset === 0) return null;
    return new MessageQueue(this, offset, this.#allocator.chunkEnd(offset));
  }

  /** A MessageQueue object over the live queue at `offset` (from another process's `queue.offset`). */
  messageQueueAt(offset: number): MessageQueue {
    this.#check();
    if (!Number.isSafeInteger(offset) || offset < 0 || !this.#allocator.isLiveFifo(offset)) {
      throw new RangeError(`no live message queue at offset ${offset} of segment "${this.name}"`);
    }
    return new MessageQueue(this, offset, this.#allocator.chunkEnd(offset));
  }

  /** Frees a message queue: its chunk goes back to the freelists, and every handle to it fails from then on. */
  freeMessageQueue(queue: MessageQueue): void {
    this.#check();
    if (!(queue instanceof MessageQueue)) throw new TypeError("expected a MessageQueue");
    if (!queue.isIn(this)) {
      throw new RangeError(`message queue at offset ${queue.offset} is not in segment "${this.name}"`);
    }
    if (!queue.isLive) throw new SegmentError("freed", `message queue at offset ${queue.offset} is not allocated`);
    this.#allocator.release(queue.offset, queue.allocationSeq);
    queue.markFreed();
  }

  /** The message queues in use, in allocation order, each as a new object of this process. */
  messageQueues(): MessageQueue[] {
    this.#check();
    return this.#listLive(KIND_MESSAGE_QUEUE, (offset, end) => new MessageQueue(this, offset, end));
  }

  /**
   * A new message ring (one producer, one consumer; see {@link MessageRing}) whose record area
   * holds `capacity` bytes (a power of two from 1 KiB to 1 GiB), or null when the segment has no
   * room.
   */
  allocMessageRing(capacity: number): MessageRing | null {
    this.#check();
    checkRingCapacity(capacity);
    const offset = this.#allocator.alloc(
      ringBytes(capacity),
      "none",
      KIND_MESSAGE_RING,
      (at) => formatMessageRing(this.u32, at, capacity),
    );
    if (offset === 0) return null;
    return new MessageRing(this, offset, this.#allocator.chunkEnd(offset));
  }

  /** A MessageRing object over the live ring at `offset` (from another process's `ring.offset`). */
  messageRingAt(offset: number): MessageRing {
    this.#check();
    if (!Number.isSafeInteger(offset) || offset < 0 || !this.#allocator.isLiveFifo(offset)) {
      throw new RangeError(`no live message ring at offset ${offset} of segment "${this.name}"`);
    }
    return new MessageRing(this, offset, this.#allocator.chunkEnd(offset));
  }

  /** Frees a message ring: its chunk goes back to the freelists; every handle to it fails from then on. */
  freeMessageRing(ring: MessageRing): void {
    this.#check();
    if (!(ring instanceof MessageRing)) throw new TypeError("expected a MessageRing");
    if (!ring.isIn(this)) {
      throw new RangeError(`message ring at offset ${ring.offset} is not in segment "${this.name}"`);
    }
    if (!ring.isLive) throw new SegmentError("freed", `message ring at offset ${ring.offset} is not allocated`);
    this.#allocator.release(ring.offset, ring.allocationSeq);
    ring.markFreed();
  }

  /** The message rings in use, in allocation order, each as a new object of this process. */
  messageRings(): MessageRing[] {
    this.#check();
    return this.#listLive(KIND_MESSAGE_RING, (offset, end) => new MessageRing(this, offset, end));
  }

  /**
   * The live fifos whose allocating process has died (its tag's lock is gone), for a service
   * that cleans up after crashed clients: free them with `freeFifo` once nobody reads them.
   */
  orphanedFifos(): Fifo[] {
    this.#check();
    const out: Fifo[] = [];
    for (const { offset, seq } of this.#allocator.orphans(KIND_FIFO)) {
      try {
        const fifo = this.#fifo(offset);
        if (fifo.allocationSeq === seq) out.push(fifo); // else freed and handed out again since
      } catch (error) {
        if (!(error instanceof RangeError)) throw error; // freed since: not an orphan any more
      }
    }
    return out;
  }

  /** The pid of the process that allocated `fifo` (0 when unknown, e.g. in a private segment). */
  ownerPidOf(fifo: Fifo): number {
    this.#check();
    this.#ownFifo(fifo);
    return this.#allocator.ownerPid(fifo.offset);
  }

  /** @ignore @internal Checks the allocator's books: every chunk live or on its freelist once. */
  audit(): AllocatorAudit {
    this.#check();
    return this.#allocator.audit();
  }

  /** @ignore @internal Repairs what a process that died inside the allocator left. */
  repair(): void {
    this.#check();
    this.#allocator.repair();
  }

  /** Fifos in use. */
  get numFifos(): number {
    this.#check();
    return this.#allocator.activeCount(KIND_FIFO);
  }

  /** Fifos on the freelists: of the class that holds `size`, or of all classes. */
  numFreeFifos(size?: number): number {
    this.#check();
    if (size !== undefined) return this.#allocator.freeCount(classOf(size));
    let total = 0;
    for (let c = 0; c < SIZE_CLASSES; c++) total += this.#allocator.freeCount(c);
    return total;
  }

  /** Bytes not held by live fifos (never carved, or on freelists). */
  get freeBytes(): number {
    this.#check();
    return this.#allocator.freeBytes();
  }

  /**
   * How full the segment is and its pressure level, by the watermarks of this handle
   * ({@link memoryWatermarks}; defaults 50% and 80%), as VPP computes it: free and cached bytes
   * both count as available.
   */
  memoryStatus(): MemoryStatus {
    this.#check();
    const { free, cached } = this.#allocator.memory();
    const usedPercent = ((this.size - free - cached) * 100) / this.size;
    const { lowPercent, highPercent } = this.#watermarks;
    const pressure = usedPercent >= highPercent ? "high" : usedPercent >= lowPercent ? "low" : "none";
    return { size: this.size, free, cached, usedPercent, pressure };
  }

  /**
   * The watermarks {@link memoryStatus} judges pressure by. They belong to this handle (each
   * process judges by its own); setting them checks `0 <= lowPercent <= highPercent <= 100`.
   */
  get memoryWatermarks(): MemoryWatermarks {
    return this.#watermarks;
  }
  set memoryWatermarks(marks: MemoryWatermarks) {
    const { lowPercent, highPercent } = marks ?? {};
    if (
      typeof lowPercent !== "number" || typeof highPercent !== "number" || !(lowPercent >= 0) ||
      !(highPercent >= lowPercent) || !(highPercent <= 100)
    ) {
      throw new RangeError(
        `watermarks need 0 <= lowPercent <= highPercent <= 100, got ${lowPercent} and ${highPercent}`,
      );
    }
    this.#watermarks = Object.freeze({ lowPercent, highPercent });
  }

  /** @ignore @internal The chunk walk, for tests and `show`. */
  chunks(): ReturnType<FifoAllocator["chunks"]> {
    this.#check();
    return this.#allocator.chunks();
  }

  /** What this process knows of the segment. */
  info(): SegmentInfo {
    this.#check();
    return {
      type: this.type,
      name: this.name,
      size: this.size,
      creatorPid: this.creatorPid,
      createdHere: this.createdHere,
      index: this.#index,
      ...(this.fd !== undefined && this.type === "memfd" && this.createdHere ? { fd: this.fd } : {}),
      activeFifos: this.numFifos,
      messageQueues: this.#allocator.activeCount(KIND_MESSAGE_QUEUE),
      messageRings: this.#allocator.activeCount(KIND_MESSAGE_RING),
      fifoChunks: this.#allocator.activeCount(KIND_FIFO_CHUNK),
      freeFifos: this.numFreeFifos(),
      freeBytes: this.freeBytes,
      preallocated: this.#allocator.preallocated,
    };
  }

  /** A readable summary in the spirit of the reference's format. */
  toString(): string {
    if (this.#deleted) return `[${this.#index}] ${this.name} (${this.type}): deleted`;
    const lines = [
      `[${this.#index}] ${this.name} (${this.type}) ${formatBytes(this.size)}, creator pid ${this.creatorPid}` +
      (this.createdHere ? " (this process)" : ""),
      `  memory: ${formatMemory(this.memoryStatus())}, ${this.numFifos} active fifos` +
      (this.#allocator.activeCount(KIND_FIFO_CHUNK) > 0
        ? `, ${this.#allocator.activeCount(KIND_FIFO_CHUNK)} fifo chunks`
        : "") +
      (this.#allocator.preallocated ? ", preallocated" : ""),
    ];
    for (const queue of this.messageQueues()) lines.push(`  ${queue.toString()}`);
    for (const ring of this.messageRings()) lines.push(`  ${ring.toString()}`);
    for (let c = 0; c < SIZE_CLASSES; c++) {
      const free = this.#allocator.freeCount(c);
      if (free > 0) lines.push(`  ${formatBytes(classBytes(c))}: ${free} free`);
    }
    return lines.join("\n");
  }

  /** Deletes the segment from its SegmentMain (see `SegmentMain.delete`). */
  [Symbol.dispose](): void {
    if (!this.#deleted) this.#release(this);
  }
}

/** The size class of a chunked fifo's chunk size; a RangeError unless it is a power of two from 4 KiB to 4 MiB. */
function checkChunkSize(bytes: number): number {
  const sizeClass = chunkClassOf(bytes);
  if (sizeClass < 0) throw new RangeError(`chunkSize must be a power of two from 4 KiB to 4 MiB, got ${bytes}`);
  return sizeClass;
}

/** "2.02 MiB used of 4 MiB (50.5%; 1 MiB free, 1 MiB cached), pressure low". */
export function formatMemory(m: MemoryStatus): string {
  const used = m.size - m.free - m.cached;
  return `${formatBytes(used)} used of ${formatBytes(m.size)} (${m.usedPercent.toFixed(1)}%; ` +
    `${formatBytes(m.free)} free, ${formatBytes(m.cached)} cached), pressure ${m.pressure}`;
}

/** "4 KiB", "1.50 MiB": binary units, as the reference prints them. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 || Number.isInteger(value) ? `${value} ${units[unit]}` : `${value.toFixed(2)} ${units[unit]}`;
}
