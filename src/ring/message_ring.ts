/**
 * A framed message ring in a segment, one producer and one consumer, after Aeron's and Agrona's
 * rings: the producer claims space and writes a record in place (or offers a copy), commits,
 * and publishes everything committed since with one store (at `publish()`, or in a microtask
 * at the end of the current task): the size word of the batch's first record, written last.
 * The consumer finds records by their own size words, so a message crosses in the cache lines
 * of the record alone (no position word to read first), and its `poll(handler)` reads many
 * records in place per call and releases their space with one store. The producer caches the
 * consumer's position and reloads it only when the ring looks full. Layout: "Message ring" in
 * `layout.ts`. Every word read from shared memory is checked where it is used: a corrupted
 * record header is a `SegmentError` "corrupt" and changes nothing.
 *
 * @module
 */

import { describeLive, peerTag, readLiveChunk } from "../segment/chunk.ts";
import { SegmentError } from "../errors.ts";
import type { FifoMemory, WaitOptions } from "../fifo/fifo.ts";
import {
  CLOSED_ABORTED,
  CLOSED_CLEAN,
  FF_ALLOC_SEQ,
  FIFO_HEADER_SIZE,
  KIND_MESSAGE_RING,
  MAX_RING_CAPACITY,
  MIN_RING_CAPACITY,
  RECORD_FIRST,
  RECORD_HEADER,
  RECORD_SIZE_MASK,
  RG_CAPACITY,
  RG_CLOSED,
  RG_CONSUMER,
  RG_DATA_SEQ,
  RG_DATA_WAITER,
  RG_HEAD,
  RG_MAGIC,
  RG_PRODUCER,
  RG_RECORDS,
  RG_SPACE_SEQ,
  RG_SPACE_WAITER,
  RG_TAIL,
  RING_MAGIC,
  RING_PADDING,
} from "../layout.ts";
import type { Watch } from "../wake/sleeper.ts";
import { type PassedBuffer, refuseOwnMemory } from "../segment/own_memory.ts";
import { resizable, WORD_COPY_MAX } from "../byte_copy.ts";
import { readableOf, type RingRecord, writableOf } from "./ring_streams.ts";

/** Called by `poll` for each record, in place: `bytes[offset .. offset + length)` is the payload. */
export type RecordHandler = (bytes: Uint8Array, offset: number, length: number, type: number) => void;

/** Bytes of a chunk's data area for a ring of `capacity`. */
export function ringBytes(capacity: number): number {
  return RG_RECORDS + capacity;
}

/** Checks a ring capacity: a power of two from 1 KiB to 1 GiB. */
export function checkRingCapacity(capacity: number): void {
  if (
    !Number.isInteger(capacity) || capacity < MIN_RING_CAPACITY || capacity > MAX_RING_CAPACITY ||
    (capacity & (capacity - 1)) !== 0
  ) {
    throw new RangeError(`a ring's capacity must be a power of two from 1024 to 2^30, got ${capacity}`);
  }
}

/** Formats a new ring in the chunk at `chunk`. */
export function formatMessageRing(u32: Uint32Array, chunk: number, capacity: number): void {
  const d = (chunk + FIFO_HEADER_SIZE) >>> 2;
  u32.fill(0, d, d + RG_RECORDS / 4 + 1); // the header, and the size word of the first record
  Atomics.store(u32, d + RG_CAPACITY / 4, capacity);
  Atomics.store(u32, d + RG_MAGIC / 4, RING_MAGIC);
}

const align = (n: number) => (n + 7) & ~7;

/**
 * The error for a record type outside 0 .. 2^31 - 1: a negative one is the padding's (-1), which
 * the consumer skips, and anything else would be cut to an int32 silently. (The test is written
 * at each call and only the throw is out of line: Bun's round of offer, publish and poll took 7 ns
 * longer with the test and the throw in one helper.)
 */
function badType(type: number): never {
  throw new RangeError(`a record's type must be an integer from 0 to 2^31 - 1, got ${type}`);
}

/** The error for a poll (or `tryReceive`) from inside a handler of the same ring's poll. */
function pollInHandler(): never {
  throw new TypeError("poll or tryReceive was called from inside a poll's handler of the same ring");
}

/** A message ring in a segment. Get one from `segment.allocMessageRing` or `segment.messageRingAt`. */
export class MessageRing {
  readonly #mem: FifoMemory;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #offset: number;
  readonly #seq: number;
  readonly #seqWord: number;
  /** Capacity of the record area, its mask, and where it starts in the segment. */
  readonly #cap: number;
  readonly #mask: number;
  readonly #base: number;
  readonly #max: number;
  /** Bytes a poll may leave unreleased: a quarter of the area. */
  readonly #lazy: number;
  readonly #tailWord: number;
  readonly #headWord: number;
  readonly #dataSeq: number;
  readonly #dataWaiter: number;
  readonly #spaceSeq: number;
  readonly #spaceWaiter: number;
  readonly #closedWord: number;
  // The producer's state: its position (found at its first record), the consumer's position as
  // last seen, the batch's first record (the word of its size, withheld until the batch is
  // published, and that size) or -1, and the record claimed (its position) or -1.
  #tail = 0;
  #headCache = 0;
  #first = -1;
  #firstSize = 0;
  #claimed = -1;
  #claimedLength = 0;
  #claimedType = 0;
  /** Whether the end-of-task microtask (publish, give back) is queued; both sides use it. */
  #scheduled = false;
  // The consumer's state.
  #head: number;
  /** The consumer's position as last stored for the producer. */
  #released: number;
  #lent: Uint8Array | undefined;
  #srcOk: Uint8Array | null = null;
  /** Words over #srcOk's buffer when #srcOk starts at its start (else null: `set` copies). */
  #srcWords: Uint32Array | null = null;
  /**
   * Words over the whole of #bufferWordsOf (null when its length can change): arrays of their own
   * and `buf.subarray(0, n)` message after message share them.
   */
  #bufferWords: Uint32Array | null = null;
  #bufferWordsOf: ArrayBufferLike | null = null;
  readonly #srcPassed: PassedBuffer = { buffer: null };
  #producing = false;
  #consuming = false;
  /** True while a poll hands records to its handler (a poll from inside it would hand them again). */
  #polling = false;
  #freed = false;
  readonly #dataWatch: Watch;
  #readable: ReadableStream<RingRecord> | undefined;
  #writable: WritableStream<Uint8Array | RingRecord> | undefined;

  /** @ignore @internal Use `segment.allocMessageRing` or `segment.messageRingAt`. */
  constructor(mem: FifoMemory, offset: number, chunkEnd: number) {
    const { seq } = readLiveChunk(mem, offset, chunkEnd, KIND_MESSAGE_RING, "message ring");
    const d = (offset + FIFO_HEADER_SIZE) >>> 2;
    const u32 = mem.u32;
    if (Atomics.load(u32, d + RG_MAGIC / 4) !== RING_MAGIC) {
      throw new SegmentError("corrupt", `message ring at offset ${offset}: bad magic`);
    }
    const cap = Atomics.load(u32, d + RG_CAPACITY / 4); // read once, checked, used
    if (
      cap < MIN_RING_CAPACITY || cap > MAX_RING_CAPACITY || (cap & (cap - 1)) !== 0 ||
      offset + FIFO_HEADER_SIZE + RG_RECORDS + cap > chunkEnd
    ) {
      throw new SegmentError("corrupt", `message ring at offset ${offset} claims capacity ${cap}`);
    }
    this.#mem = mem;
    this.#u32 = u32;
    this.#i32 = mem.i32;
    this.#offset = offset;
    this.#seq = seq;
    this.#seqWord = (offset + FF_ALLOC_SEQ) >>> 2;
    this.#cap = cap;
    this.#mask = cap - 1;
    this.#base = offset + FIFO_HEADER_SIZE + RG_RECORDS;
    this.#max = cap / 4 - RECORD_HEADER;
    this.#lazy = cap / 4;
    this.#tailWord = d + RG_TAIL / 4;
    this.#headWord = d + RG_HEAD / 4;
    this.#dataSeq = d + RG_DATA_SEQ / 4;
    this.#dataWaiter = d + RG_DATA_WAITER / 4;
    this.#spaceSeq = d + RG_SPACE_SEQ / 4;
    this.#spaceWaiter = d + RG_SPACE_WAITER / 4;
    this.#closedWord = d + RG_CLOSED / 4;
    this.#head = this.#released = Atomics.load(u32, this.#headWord);
    this.#dataWatch = this.#watch(true, 0);
  }

  /** This ring's position in its segment: another process passes it to `segment.messageRingAt`. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes of the record area. */
  get capacity(): number {
    return this.#cap;
  }

  /** The longest message: a quarter of the capacity, less a record header. */
  get maxMessage(): number {
    return this.#max;
  }

  /**
   * The segment's memory, for writing claimed records and reading polled ones in place: a view
   * over a buffer lent for the purpose, so that detaching it cannot break the segment.
   */
  get bytes(): Uint8Array {
    this.#check();
    return this.#lentBytes();
  }

  /** The view over the lent buffer; a new one only if a caller detached it (then its length is 0). */
  #lentBytes(): Uint8Array {
    const lent = this.#lent;
    if (lent !== undefined && lent.byteLength !== 0) return lent;
    return (this.#lent = new Uint8Array(this.#mem.lent(), 0, this.#mem.size));
  }

  /** A DataView over the same memory as {@link bytes}. */
  get view(): DataView {
    this.#check();
    return new DataView(this.#mem.lent(), 0, this.#mem.size);
  }

  /**
   * Throws unless the ring is still this handle's allocation. The allocation word is read plainly:
   * it only changes when the ring is freed, a check is a best effort against a freed handle
   * either way, and JavaScriptCore's `Atomics.load` costs a fence (Bun's rate of records fell by
   * 40% with it).
   */
  #check(): void {
    if (this.#gone() || this.#u32[this.#seqWord] !== this.#seq) this.#unusable();
  }

  /** Whether this handle's memory is no longer its own: freed through it, or its segment deleted. */
  #gone(): boolean {
    return this.#freed || this.#mem.deleted;
  }

  #unusable(): never {
    if (this.#mem.deleted) throw new SegmentError("deleted", `segment "${this.#mem.name}" was deleted`);
    throw new SegmentError("freed", `message ring at offset ${this.#offset} was freed`);
  }

  #corrupt(what: string): never {
    throw new SegmentError("corrupt", `message ring at offset ${this.#offset} of segment "${this.#mem.name}": ${what}`);
  }

  // ---- the producer -------------------------------------------------------------------------

  /**
   * Reserves room for a record of `length` bytes at the producer's position (a padding record
   * first when it would not fit before the end of the area), and for the zero size word that
   * `publish` writes after it. Returns the record's position, or -1 when there is no room
   * (after publishing what is pending, so that the consumer can free it).
   */
  #reserve(length: number): number {
    if (!this.#producing) this.#becomeProducer();
    if (this.#claimed >= 0) throw new RangeError("a record is claimed: commit() or abort() it first");
    if (!(length >= 0 && length <= this.#max && (length | 0) === length)) {
      throw new RangeError(`a message of ${length} bytes; this ring takes 0 to ${this.#max}`);
    }
    const size = align(RECORD_HEADER + length);
    const tail = this.#tail;
    const index = tail & this.#mask;
    const pad = index + size > this.#cap ? this.#cap - index : 0;
    const need = pad + size + RECORD_HEADER;
    if (((tail - this.#headCache) >>> 0) + need > this.#cap) {
      this.#headCache = this.#readHead();
      if (((tail - this.#headCache) >>> 0) + need > this.#cap) {
        if (this.#first >= 0) this.publish();
        return -1;
      }
    }
    if (pad > 0) {
      this.#put(tail, pad, RING_PADDING);
      this.#tail = (tail + pad) >>> 0;
    }
    return this.#tail;
  }

  /**
   * Writes the header of a record of `size` bytes (its header included) at `position`: its type,
   * then its size, except for the batch's first record, whose size is withheld until `publish()`
   * stores it (the consumer cannot pass it before then, so the records after it need no fence of
   * their own).
   */
  #put(position: number, size: number, type: number): void {
    const w = this.#sizeWord(position);
    this.#i32[w + 1] = type;
    if (this.#first < 0) {
      this.#first = w;
      this.#firstSize = size | RECORD_FIRST; // negative: an int32 in every engine, never boxed
    } else {
      this.#i32[w] = size;
    }
  }

  #readHead(): number {
    const head = Atomics.load(this.#u32, this.#headWord);
    const used = (this.#tail - head) >>> 0;
    if (used > this.#cap) this.#corrupt(`head ${head} is ${used} bytes behind the tail ${this.#tail}`);
    return head;
  }

  /**
   * Claims a record of `length` bytes and type `type` (an integer from 0 to 2^31 - 1, else a
   * RangeError): returns the offset in {@link bytes} where its payload goes, or -1 when there is
   * no room. Write the payload, then `commit()` (or `abort()`).
   */
  tryClaim(length: number, type = 0): number {
    this.#check();
    if ((type | 0) !== type || type < 0) badType(type);
    const at = this.#reserve(length);
    if (at < 0) return -1;
    this.#claimed = at;
    this.#claimedLength = length;
    this.#claimedType = type;
    return this.#base + (at & this.#mask) + RECORD_HEADER;
  }

  /** Commits the claimed record: published at the next `publish()` or at the end of this task. */
  commit(): void {
    const at = this.#claimed;
    if (at < 0) throw new RangeError("no record is claimed");
    this.#check();
    this.#put(at, RECORD_HEADER + this.#claimedLength, this.#claimedType);
    this.#tail = (at + align(RECORD_HEADER + this.#claimedLength)) >>> 0;
    this.#claimed = -1;
    this.#schedule();
  }

  /** Gives the claimed record up: the consumer never sees it (nothing of it was published). */
  abort(): void {
    if (this.#claimed < 0) throw new RangeError("no record is claimed");
    this.#claimed = -1; // its header was never written: the producer's position stays before it
  }

  /**
   * Copies `bytes` in as one record of `type` (0 to 2^31 - 1); false when there is no room.
   * Published like a commit.
   */
  offer(bytes: Uint8Array, type = 0): boolean {
    this.#check();
    if (!(bytes instanceof Uint8Array)) throw new TypeError("offer takes a Uint8Array");
    if (bytes !== this.#srcOk) this.#checkSource(bytes);
    if ((type | 0) !== type || type < 0) badType(type);
    const n = bytes.length;
    const at = this.#reserve(n);
    if (at < 0) return false;
    const to = this.#base + (at & this.#mask) + RECORD_HEADER; // 8-aligned, as every record
    const words = this.#srcWords;
    if (words !== null && n <= WORD_COPY_MAX) {
      // Word stores, not `set` (a call into the runtime's memmove): 64 B records between two
      // processes moved at 9-14 M/s with `set` and 13-26 M/s with words, in every runtime.
      const u32 = this.#u32;
      const w = to >>> 2;
      const k = n >>> 2;
      for (let i = 0; i < k; i++) u32[w + i] = words[i];
      for (let i = k << 2; i < n; i++) this.#mem.u8[to + i] = bytes[i];
    } else if (n !== 0) { // a view whose buffer was transferred reads as empty; `set` would throw on it
      this.#mem.u8.set(bytes, to);
    }
    this.#put(at, RECORD_HEADER + n, type);
    this.#tail = (at + align(RECORD_HEADER + n)) >>> 0;
    this.#schedule();
    return true;
  }

  /** Refuses a view of the segment's own memory (copy it through a buffer of your own). */
  #checkSource(bytes: Uint8Array): void {
    refuseOwnMemory(
      bytes,
      this.#mem.u8.buffer,
      this.#mem,
      this.#srcPassed,
      "the message is a view of the segment's own memory; copy it through a buffer of your own",
    );
    this.#srcOk = bytes;
    // Only from a buffer's start: a copy loop indexed from an offset made offer slower in
    // JavaScriptCore (between two processes, 13 M/s against 19-25 from the start).
    if (bytes.byteLength === 0 || bytes.byteOffset !== 0) {
      this.#srcWords = null; // nothing to copy, or not at its buffer's start: `set`
      return;
    }
    // The buffer of a view that passed (reading `.buffer` again is slow in V8).
    const buffer = this.#srcPassed.buffer!;
    if (buffer !== this.#bufferWordsOf) {
      this.#bufferWords = resizable(bytes) ? null : new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
      this.#bufferWordsOf = buffer;
    }
    this.#srcWords = this.#bufferWords;
  }

  /**
   * At the end of the current task: publishes what is committed, and gives back what was read
   * (one microtask for both, whichever side asked first).
   */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#gone()) return;
      if (this.#first >= 0) this.publish();
      this.#release();
    });
  }

  /** Makes every committed record visible to the consumer: one store, one fence. */
  publish(): void {
    this.#check();
    const first = this.#first;
    if (first < 0) return;
    this.#first = -1;
    this.#u32[this.#tailWord] = this.#tail; // for toString() and info only: nobody waits on it
    // The zero size word the consumer stops at, after the last record (reserve kept 8 bytes free
    // there), then the batch's first size: the store that publishes it all.
    this.#i32[this.#sizeWord(this.#tail)] = 0;
    Atomics.store(this.#i32, first, this.#firstSize);
    if (Atomics.load(this.#u32, this.#dataWaiter) !== 0) {
      this.#mem.sleeper.notify(this.#dataSeq, this.#dataWaiter, this.#offset);
    }
  }

  /** Publishes, then ends the stream: the consumer reads what is left, then sees the end. */
  close(): void {
    this.#end(CLOSED_CLEAN);
  }

  /** Publishes, then ends the stream as failed ("aborted" for the consumer). */
  abortStream(): void {
    this.#end(CLOSED_ABORTED);
  }

  #end(how: number): void {
    this.#check();
    if (this.#claimed >= 0) this.abort();
    this.publish();
    Atomics.compareExchange(this.#i32, this.#closedWord, 0, how);
    if (Atomics.load(this.#u32, this.#dataWaiter) !== 0) {
      this.#mem.sleeper.notify(this.#dataSeq, this.#dataWaiter, this.#offset);
    }
  }

  /** True once the producer closed the ring (records may be left to read). */
  get isClosed(): boolean {
    this.#check();
    return Atomics.load(this.#i32, this.#closedWord) !== 0;
  }

  /** True when the producer ended the ring with `abortStream()` (a failed stream, not a clean end). */
  get isAborted(): boolean {
    this.#check();
    return Atomics.load(this.#i32, this.#closedWord) === CLOSED_ABORTED;
  }

  /**
   * The records as a stream, each one's type and a copy of its payload, read as they are
   * published (sleeping in between); it ends once the producer closed the ring and everything was
   * read, and errors with `SegmentError` "aborted" after `abortStream()`, "peer-gone" when the
   * producer died (after what it published). One reader per ring.
   */
  get readable(): ReadableStream<RingRecord> {
    this.#check();
    return (this.#readable ??= readableOf(this));
  }

  /**
   * A stream that writes each chunk as one record (a `Uint8Array` as type 0, a `{ type, data }`
   * with its type), waiting for room as needed; closing it closes the ring, aborting it aborts
   * the ring (the reader's stream errors).
   */
  get writable(): WritableStream<Uint8Array | RingRecord> {
    this.#check();
    return (this.#writable ??= writableOf(this));
  }

  // ---- the consumer -------------------------------------------------------------------------

  /**
   * Calls `handler(bytes, offset, length, type)` for up to `limit` published records, in order,
   * in place (valid during the call only); their space goes back to the producer with one store
   * (see `#release` for when). Returns how many records were handled (none for a limit below 1).
   * A handler that throws ends the poll with its error: the records before are consumed, the one
   * it threw on comes again at the next poll. A record header that breaks the rules is a
   * `SegmentError` "corrupt", and the records before it are not delivered again. A handler may
   * not poll the same ring (a TypeError); one that frees the ring or deletes its segment ends the
   * poll.
   */
  poll(handler: RecordHandler, limit = Infinity): number {
    this.#check();
    if (typeof handler !== "function") throw new TypeError("poll takes a handler function");
    if (!this.#consuming) this.#becomeConsumer();
    const start = this.#head;
    const i32 = this.#i32;
    const base = this.#base;
    const mask = this.#mask;
    let word = this.#sizeWord(start);
    let size = Atomics.load(i32, word); // the one acquire of a batch
    if (size === 0) {
      // Nothing to read. The space read goes back at the end of the task (the poll that read
      // it asked for that) or at a quarter of the area, not here: a store is a fence, and in a
      // round trip this poll runs while the answer is on its way (Deno's took 7% longer).
      return 0;
    }
    if (!(limit >= 1)) return 0; // 0, negative, NaN: nothing (as a queue's receiveBatch)
    if (this.#polling) pollInHandler();
    const cap = this.#cap;
    let head = start;
    let count = 0;
    const bytes = this.#lentBytes();
    this.#polling = true;
    try {
      for (;;) {
        const next = this.#span(head, size);
        const length = (size & RECORD_SIZE_MASK) - RECORD_HEADER;
        const type = i32[word + 1];
        if (type >= 0) {
          if (length > this.#max) this.#badRecord(head, size);
          handler(bytes, base + (head & mask) + RECORD_HEADER, length, type);
          count++;
        } else if (type !== RING_PADDING) {
          this.#corrupt(`a record at position ${head} has type ${type}`); // no producer writes it
        }
        head = (head + next) >>> 0;
        // A lap at most: the producer cannot write into what this poll has not released, so
        // more is scribbled memory, not records. A handler that freed the ring or deleted the
        // segment ends the poll: the memory is no longer this ring's.
        if (count >= limit || ((head - start) >>> 0) >= cap || this.#gone()) break;
        word = this.#sizeWord(head);
        size = i32[word];
        if (size === 0) break;
        // A batch's first record (RECORD_FIRST is the sign bit), published after this poll began:
        // read again with the acquire that makes its batch visible.
        if (size < 0) size = Atomics.load(i32, word);
      }
    } finally {
      this.#polling = false;
      if (head !== start && !this.#gone()) {
        this.#head = head;
        if (((head - this.#released) >>> 0) >= this.#lazy) this.#release();
        else this.#schedule();
      }
    }
    return count;
  }

  /** The index in the i32 view of the size word of a record at `position`. */
  #sizeWord(position: number): number {
    return (this.#base + (position & this.#mask)) >>> 2;
  }

  /**
   * The bytes that the record at `position` with size word `word` takes (8-aligned), checked: a
   * size from the header's to the capacity, ending inside the area; else "corrupt".
   */
  #span(position: number, word: number): number {
    const size = word & RECORD_SIZE_MASK;
    const span = align(size);
    if (size < RECORD_HEADER || size > this.#cap || (position & this.#mask) + span > this.#cap) {
      this.#badRecord(position, size);
    }
    return span;
  }

  #badRecord(position: number, size: number): never {
    this.#corrupt(`a record at position ${position} claims ${size & RECORD_SIZE_MASK} bytes`);
  }

  /** Whether the size word at the consumer's position says a record is published there. */
  #hasRecord(): boolean {
    return Atomics.load(this.#i32, this.#sizeWord(this.#head)) !== 0;
  }

  /**
   * Stores the consumer's position for the producer: before a wait, once a poll leaves a quarter
   * of the area unreleased, and at the latest at the end of the task (so that a handle made
   * later, here or in another process, starts after what this one read). Not at every poll: a
   * store is a fence in JavaScript (an `xchg`), which waits for the poll's own stores, and a round
   * trip needs the one of the publish already. Never short of room for it: with less than a
   * quarter unreleased, an emptied ring has more than three quarters free, and the longest
   * record, the padding before it and the zero size word after it need at most half and 8 bytes.
   */
  #release(): void {
    const head = this.#head;
    if (head === this.#released) return;
    this.#released = head;
    Atomics.store(this.#u32, this.#headWord, head);
    if (Atomics.load(this.#u32, this.#spaceWaiter) !== 0) {
      this.#mem.sleeper.notify(this.#spaceSeq, this.#spaceWaiter, this.#offset);
    }
  }

  /** Copies the next record's payload into `dst`: its length, or -1 when none is published. */
  tryReceive(dst: Uint8Array): number {
    if (!(dst instanceof Uint8Array)) throw new TypeError("tryReceive takes a Uint8Array");
    let got = -1;
    this.poll((bytes, offset, length) => {
      if (length > dst.length) throw new RangeError(`a message of ${length} bytes does not fit ${dst.length}`);
      if (length !== 0) dst.set(bytes.subarray(offset, offset + length));
      got = length;
    }, 1);
    return got;
  }

  /** Whether a record is published and not yet polled (the consumer's question). */
  get isEmpty(): boolean {
    this.#check();
    if (this.#hasRecord()) return false;
    this.#release();
    return true;
  }

  // ---- waits --------------------------------------------------------------------------------

  /**
   * Takes the producer's side: its position is after the last published record, found by
   * walking the records from the consumer's position (a lap at most) to the first zero size word.
   */
  #becomeProducer(): void {
    const u32 = this.#u32;
    const head = Atomics.load(u32, this.#headWord);
    let tail = head;
    for (;;) {
      const word = Atomics.load(this.#i32, this.#sizeWord(tail));
      if (word === 0) break;
      const next = this.#span(tail, word);
      if (((tail - head) >>> 0) + next > this.#cap) this.#badRecord(tail, word);
      tail = (tail + next) >>> 0;
    }
    this.#tail = tail;
    this.#headCache = head;
    this.#producing = true;
    Atomics.store(u32, this.#tailWord - RG_TAIL / 4 + RG_PRODUCER / 4, this.#mem.liveness.ownTag);
  }

  #becomeConsumer(): void {
    this.#consuming = true;
    Atomics.store(this.#u32, this.#tailWord - RG_TAIL / 4 + RG_CONSUMER / 4, this.#mem.liveness.ownTag);
  }

  #peer(data: boolean): number {
    const side = this.#tailWord - RG_TAIL / 4 + (data ? RG_PRODUCER : RG_CONSUMER) / 4;
    return peerTag(this.#u32, side, this.#offset, this.#mem.liveness.ownTag);
  }

  #watch(data: boolean, bytes: number): Watch {
    return {
      chunk: this.#offset,
      seq: data ? this.#dataSeq : this.#spaceSeq,
      waiter: data ? this.#dataWaiter : this.#spaceWaiter,
      check: () => this.#check(),
      ready: data
        ? () => Atomics.load(this.#i32, this.#closedWord) !== 0 || this.#hasRecord()
        : () => this.#cap - ((this.#tail - this.#readHead()) >>> 0) >= bytes,
      peer: () => this.#peer(data),
    };
  }

  /** @ignore @internal What `waitAny` watches. */
  get dataWatch(): Watch {
    if (!this.#consuming) this.#becomeConsumer();
    this.#release(); // the producer may be waiting for what was read
    return this.#dataWatch;
  }

  /** @ignore @internal The sleeper of this ring's segment. */
  get sleeper(): FifoMemory["sleeper"] {
    return this.#mem.sleeper;
  }

  /**
   * Waits until a record is published or the ring is closed: true then, false on timeout;
   * rejects with "peer-gone" when the producer's process died and nothing is left to read.
   */
  waitForData(options: WaitOptions = {}): Promise<boolean> {
    try {
      this.#check();
      // Settled in the wake-up itself: the caller's await resumes one microtask after the event.
      return this.#mem.sleeper.sleep([this.dataWatch], options, (ready) => {
        if (ready.length === 0) return false;
        if (this.#dataWatch.ready()) return true;
        throw new SegmentError("peer-gone", `the producer of message ring at offset ${this.#offset} died`);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits until a record of `length` bytes fits (padding included, at worst): true then, false on timeout. */
  waitForSpace(length: number, options: WaitOptions = {}): Promise<boolean> {
    try {
      this.#check();
      if (typeof length !== "number") throw new TypeError(`length must be a number, got ${typeof length}`);
      if (!(Number.isInteger(length) && length >= 0 && length <= this.#max)) {
        throw new RangeError(`a message of ${length} bytes does not fit`);
      }
      if (!this.#producing) this.#becomeProducer();
      if (this.#first >= 0) this.publish();
      // A record, at worst the padding before it, and the zero size word after it.
      const need = Math.min(2 * align(RECORD_HEADER + length) + RECORD_HEADER, this.#cap);
      const watch = this.#watch(false, need);
      return this.#mem.sleeper.sleep([watch], options, (ready) => {
        if (ready.length === 0) return false;
        if (watch.ready()) return true;
        throw new SegmentError("peer-gone", `the consumer of message ring at offset ${this.#offset} died`);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Whether the ring's header still says it is allocated. */
  get isLive(): boolean {
    return !this.#gone() && Atomics.load(this.#u32, this.#seqWord) === this.#seq;
  }

  /** @ignore @internal */
  get allocationSeq(): number {
    return this.#seq;
  }

  /** @ignore @internal */
  isIn(mem: FifoMemory): boolean {
    return this.#mem === mem;
  }

  /** @ignore @internal */
  markFreed(): void {
    this.#freed = true;
  }

  /** One line. */
  toString(): string {
    return describeLive(this, () => this.#describe(), `message ring @${this.#offset} (gone)`);
  }

  #describe(): string {
    const used = (Atomics.load(this.#u32, this.#tailWord) - Atomics.load(this.#u32, this.#headWord)) >>> 0;
    return `message ring @${this.#offset}: ${used} of ${this.#cap} bytes used`;
  }
}
