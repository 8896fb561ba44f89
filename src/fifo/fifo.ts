/**
 * A single-producer single-consumer byte fifo inside a shared segment. Head and tail are
 * counters (modulo a period that is a multiple of the capacity, see `layout.ts`), each written
 * by one side only and published with `Atomics.store` after the bytes are in place; the other
 * side reads it with `Atomics.load`. A counter's ring position is derived from it, never stored,
 * so a process killed at any instruction leaves a consistent fifo. Each side caches the other's
 * counter and reloads it only when the fifo looks full (producer) or empty (consumer).
 *
 * Everything read from shared memory is checked before use: a peer that scribbles on the
 * header gets a {@link SegmentError} with code "corrupt", never an access outside the ring.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  CHUNK_TABLE_STRIDE,
  chunkClassOf,
  classBytes,
  CLOSED_ABORTED,
  CLOSED_CLEAN,
  counterPeriod,
  DEQ_NTF_ALWAYS,
  DEQ_NTF_IF_EMPTY,
  DEQ_NTF_IF_FULL,
  FF_ALLOC_SEQ,
  FF_CAPACITY,
  FF_CHUNK_BYTES,
  FF_CLIENT_SESSION,
  FF_CLIENT_THREAD,
  FF_CLOSED,
  FF_CONSUMER,
  FF_DATA_SEQ,
  FF_DATA_WAITER,
  FF_DEQ_THRESHOLD,
  FF_HAS_DEQ_NTF,
  FF_HAS_EVENT,
  FF_HEAD,
  FF_LIST,
  FF_MASTER_SESSION,
  FF_MASTER_THREAD,
  FF_PRODUCER,
  FF_SIZE,
  FF_SPACE_SEQ,
  FF_SPACE_WAITER,
  FF_SPACE_WANTED,
  FF_TAG,
  FF_TAIL,
  FF_WANT_DEQ_NTF,
  FIFO_HEADER_SIZE,
  KIND_FIFO,
  SIZE_CLASSES,
} from "../layout.ts";
import { type ChunkSource, FifoChunks } from "./fifo_chunks.ts";
import { OooRanges, type OooSegment } from "./ooo.ts";
import { describeLive, peerTag, readLiveChunk } from "../segment/chunk.ts";
import { ByteCopier } from "../byte_copy.ts";
import type { Signaller } from "../wake/signaller.ts";
import type { Waiters } from "../wake/waiters.ts";
import type { Liveness } from "../segment/process_table.ts";
import { type WaitCondition, waitSync } from "../wake/word_wait.ts";
import { NO_OPTIONS, type Sleeper, type SleepOptions, type Watch } from "../wake/sleeper.ts";

/** Options of the asynchronous waits: `timeoutMs`, `signal` and `spinMicros`. */
export type WaitOptions = SleepOptions;
import { readableOf, writableOf } from "./fifo_streams.ts";
import { type PassedBuffer, refuseOwnMemory } from "../segment/own_memory.ts";

export type { OooSegment } from "./ooo.ts";

/** Which list a fifo was allocated for. */
export type FifoList = "rx" | "tx" | "none";

/**
 * What a producer can ask to be told of the reader's dequeues (see
 * {@link Fifo.addDequeueNotification}).
 */
export type DequeueNotification = "always" | "if-full" | "if-empty";

const DEQ_NTF_FLAGS: Record<DequeueNotification, number> = {
  "always": DEQ_NTF_ALWAYS,
  "if-full": DEQ_NTF_IF_FULL,
  "if-empty": DEQ_NTF_IF_EMPTY,
};

/** Every dequeue notification flag: other bits of the producer's word mean nothing. */
const DEQ_NTF_ANY = DEQ_NTF_ALWAYS | DEQ_NTF_IF_FULL | DEQ_NTF_IF_EMPTY;

function deqNtfFlag(kind: DequeueNotification): number {
  if (!Object.hasOwn(DEQ_NTF_FLAGS, kind)) {
    throw new TypeError(`a dequeue notification is "always", "if-full" or "if-empty", got ${String(kind)}`);
  }
  return DEQ_NTF_FLAGS[kind];
}

/** The memory a fifo lives in: views over one segment's single ArrayBuffer. */
export interface FifoMemory extends ChunkSource {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly view: DataView;
  /** Segment size in bytes, as validated when the segment was mapped. */
  readonly size: number;
  /** True once the segment was deleted. */
  readonly deleted: boolean;
  /** The segment's display name, for messages. */
  readonly name: string;
  /** Sleep and wake on the segment's words. */
  readonly signaller: Signaller;
  /** Who sleeps on which word (Sync waits). */
  readonly waiters: Waiters;
  /** Asynchronous waits, and waking the other side's sleepers. */
  readonly sleeper: Sleeper;
  /** This process's tag, and whether another's process lives. */
  readonly liveness: Liveness;
  /** The buffer that views handed to callers are made over (never the segment's own). */
  lent(): ArrayBuffer | SharedArrayBuffer;
  /** Whether `view` lies in this segment's memory, through any mapping of it in this process. */
  holds(view: Uint8Array): boolean;
}

const DATA = 0;
const SPACE = 1;

function checkBytes(what: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) notBytes(what);
}

function notBytes(what: string): never {
  throw new TypeError(`${what} must be a Uint8Array`);
}

function checkCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
  }
}

const LIST_NAMES: readonly FifoList[] = ["none", "rx", "tx"];

/** A fifo in a segment. Get one from `segment.allocFifo` or `segment.fifoAt`. */
export class Fifo {
  readonly #mem: FifoMemory;
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #offset: number;
  /** The ring's bytes: a contiguous fifo's capacity; for a chunked one, the most its size can be. */
  readonly #cap: number;
  /** A chunked fifo's table (null for a contiguous fifo) and its size word. */
  readonly #chunks: FifoChunks | null;
  readonly #sizeWord: number;
  /** The most bytes the fifo can store: the capacity, or a chunked ring less its spare chunk. */
  readonly #maxSize: number;
  /** Period of the head and tail counters, a multiple of the capacity. */
  readonly #period: number;
  readonly #data: number;
  readonly #head: number;
  readonly #tail: number;
  readonly #dataSeq: number;
  readonly #dataWaiter: number;
  readonly #spaceSeq: number;
  readonly #spaceWaiter: number;
  readonly #spaceWanted: number;
  readonly #closed: number;
  /** The allocation this handle belongs to, and the word that names the current one. */
  readonly #seq: number;
  readonly #seqWord: number;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #cachedHead = 0;
  #cachedTail = 0;
  /** The last counter value each side saw of its own counter, and its ring index (saves a division). */
  #headMark = -1;
  #headIdx = 0;
  #tailMark = -1;
  #tailIdx = 0;
  #freed = false;
  readonly #ooo: OooRanges;
  readonly #copier: ByteCopier;
  #srcOk: Uint8Array | null = null;
  #dstOk: Uint8Array | null = null;
  readonly #srcPassed: PassedBuffer = { buffer: null };
  readonly #dstPassed: PassedBuffer = { buffer: null };
  /** Whether this handle wrote its process's tag as the fifo's producer / consumer. */
  #producing = false;
  #consuming = false;
  readonly #dataWatch: Watch;
  /** A data wait's watches and its end, made once: a reader that waits after every message allocates neither. */
  readonly #dataWatches: readonly Watch[];
  readonly #dataFinish = this.#finishFor(DATA, 0);

  /**
   * @ignore @internal Use `segment.allocFifo` or `segment.fifoAt`. `chunkEnd` is where the segment's
   * chunk index says the chunk ends: the header must agree with it.
   */
  constructor(mem: FifoMemory, offset: number, chunkEnd: number) {
    const { seq, sizeClass } = readLiveChunk(mem, offset, chunkEnd, KIND_FIFO, "fifo");
    const w = offset >>> 2;
    const u32 = mem.u32;
    const cap = Atomics.load(u32, w + FF_CAPACITY / 4); // read once, checked, used
    const chunkBytes = Atomics.load(u32, w + FF_CHUNK_BYTES / 4);
    const chunkClass = chunkBytes === 0 ? -1 : chunkedClass(cap, chunkBytes, sizeClass);
    if (chunkBytes === 0 ? cap < 1 || cap > classBytes(sizeClass) : chunkClass < 0) {
      throw new SegmentError(
        "corrupt",
        `fifo at offset ${offset} of segment "${mem.name}" claims capacity ${cap}` +
          (chunkBytes === 0 ? "" : ` in chunks of ${chunkBytes}`),
      );
    }
    this.#chunks = chunkBytes === 0 ? null : new FifoChunks(mem, offset, seq, cap, chunkBytes, chunkClass);
    this.#sizeWord = w + FF_SIZE / 4;
    this.#maxSize = chunkBytes === 0 ? cap : cap - chunkBytes;
    this.#seq = seq;
    this.#seqWord = w + FF_ALLOC_SEQ / 4;
    this.#period = counterPeriod(cap);
    this.#ooo = new OooRanges(this.#period);
    this.#mem = mem;
    this.#u8 = mem.u8;
    this.#u32 = u32;
    this.#i32 = mem.i32;
    this.#offset = offset;
    this.#cap = cap;
    this.#data = offset + FIFO_HEADER_SIZE;
    this.#copier = new ByteCopier(mem.u8, mem.view, mem.i32);
    this.#head = w + FF_HEAD / 4;
    this.#tail = w + FF_TAIL / 4;
    this.#dataSeq = w + FF_DATA_SEQ / 4;
    this.#dataWaiter = w + FF_DATA_WAITER / 4;
    this.#spaceSeq = w + FF_SPACE_SEQ / 4;
    this.#spaceWaiter = w + FF_SPACE_WAITER / 4;
    this.#spaceWanted = w + FF_SPACE_WANTED / 4;
    this.#closed = w + FF_CLOSED / 4;
    this.#cachedHead = Atomics.load(u32, this.#head);
    this.#cachedTail = Atomics.load(u32, this.#tail);
    this.#markHead(this.#cachedHead);
    this.#markTail(this.#cachedTail);
    this.#dataWatch = this.#watch(DATA, 0);
    this.#dataWatches = [this.#dataWatch];
  }

  /** Records this process as the fifo's producer: the consumer's waits watch it for death. */
  #becomeProducer(): void {
    this.#producing = true;
    Atomics.store(this.#u32, (this.#offset + FF_PRODUCER) >>> 2, this.#mem.liveness.ownTag);
  }

  /** Records this process as the fifo's consumer. */
  #becomeConsumer(): void {
    this.#consuming = true;
    Atomics.store(this.#u32, (this.#offset + FF_CONSUMER) >>> 2, this.#mem.liveness.ownTag);
  }

  /**
   * The process at the other end of a side: the tag the other side recorded, or, until it shows
   * up, the fifo's allocator; 0 when that is this process (or nobody).
   */
  #peerOf(kind: number): number {
    const side = (this.#offset + (kind === DATA ? FF_PRODUCER : FF_CONSUMER)) >>> 2;
    return peerTag(this.#u32, side, this.#offset, this.#mem.liveness.ownTag);
  }

  /** Remembers a counter's ring index, so that the next operation needs no division. */
  #markHead(head: number): void {
    this.#headMark = head;
    this.#headIdx = (head % this.#cap) | 0; // an int32 index, even from a counter past 2^31
  }

  #markTail(tail: number): void {
    this.#tailMark = tail;
    this.#tailIdx = (tail % this.#cap) | 0;
  }

  /**
   * Throws unless this handle's fifo can be used. Hot: every operation runs it, so its failure
   * paths live in {@link #unusable}, out of the way of the JIT's inlining budget.
   */
  #check(): void {
    if (this.#freed || this.#mem.deleted || Atomics.load(this.#u32, this.#seqWord) !== this.#seq) this.#unusable();
  }

  #unusable(): never {
    if (this.#freed) throw new SegmentError("freed", `fifo at offset ${this.#offset} was freed through this handle`);
    if (this.#mem.deleted) throw new SegmentError("deleted", `segment "${this.#mem.name}" was deleted`);
    throw new SegmentError(
      "freed",
      `fifo at offset ${this.#offset} of segment "${this.#mem.name}" was freed (and perhaps allocated again)`,
    );
  }

  #corrupt(what: string): never {
    throw new SegmentError("corrupt", `fifo at offset ${this.#offset} of segment "${this.#mem.name}": ${what}`);
  }

  /**
   * Rejects a view of the segment's own memory (this fifo's ring, another fifo's, a header):
   * copying shared memory into shared memory could scramble both, and another process may be
   * changing it meanwhile. Copy through a buffer of your own. The last array that passed is
   * remembered per direction (an array never changes buffer; reading `.buffer` is slow in V8).
   */
  #checkAlias(what: "src" | "dst", view: Uint8Array): void {
    if (view !== (what === "src" ? this.#srcOk : this.#dstOk)) this.#aliasMiss(what, view);
  }

  #aliasMiss(what: "src" | "dst", view: Uint8Array): void {
    refuseOwnMemory(
      view,
      this.#u8.buffer,
      this.#mem,
      what === "src" ? this.#srcPassed : this.#dstPassed,
      `${what} is a view of the segment's own memory; copy it through a buffer of your own`,
    );
    if (what === "src") this.#srcOk = view;
    else this.#dstOk = view;
  }

  /** `to - from` modulo the period (written so that no step leaves int32 range). */
  #dist(to: number, from: number): number {
    const d = to - from;
    return d >= 0 ? d : d + this.#period;
  }

  /**
   * A counter read from its word (Atomics.load: another handle, or a peer, may write it),
   * checked. The failure paths below are cold functions, to keep the hot ones small.
   */
  #counter(word: number): number {
    const value = Atomics.load(this.#u32, word);
    if (value >= this.#period) this.#badCounter(value);
    return value;
  }

  /**
   * This side's own counter: only this side writes it, so a plain read (as in any
   * single-writer ring) is enough; it is checked like any shared word.
   */
  #own(word: number): number {
    const value = this.#u32[word];
    if (value >= this.#period) this.#badCounter(value);
    return value;
  }

  #badCounter(value: number): never {
    this.#corrupt(`counter ${value} is past the period ${this.#period}`);
  }

  #badDistance(head: number, tail: number): never {
    this.#corrupt(`head ${head} and tail ${tail} are ${this.#dist(tail, head)} bytes apart, capacity ${this.#cap}`);
  }

  /** Bytes readable now, as seen by the consumer: refreshes the cached tail. */
  #used(head: number): number {
    const tail = this.#counter(this.#tail);
    this.#cachedTail = tail;
    const used = this.#dist(tail, head);
    if (used > this.#cap) this.#badDistance(head, tail);
    return used;
  }

  /** Free bytes now, as seen by the producer: refreshes the cached head. */
  #free(tail: number): number {
    const head = this.#counter(this.#head);
    this.#cachedHead = head;
    const used = this.#dist(tail, head);
    if (used > this.#cap) this.#badDistance(head, tail);
    const limit = this.#limit();
    return used < limit ? limit - used : 0; // a chunked fifo's size set below what is stored: nothing free
  }

  /** The most bytes the producer may store: the capacity, or a chunked fifo's size word now. */
  #limit(): number {
    if (this.#chunks === null) return this.#cap;
    const size = Atomics.load(this.#u32, this.#sizeWord);
    return size < this.#maxSize ? size : this.#maxSize; // a word past the most counts as the most
  }

  /** The ring index of the head counter `head`. */
  #headIndex(head: number): number {
    return head === this.#headMark ? this.#headIdx : (head % this.#cap) | 0;
  }

  /** The ring index of the tail counter `tail`. */
  #tailIndex(tail: number): number {
    return tail === this.#tailMark ? this.#tailIdx : (tail % this.#cap) | 0;
  }

  /** Writes n bytes of src (from srcAt) into the ring at ring index `at`. */
  #copyIn(at: number, src: Uint8Array, srcAt: number, n: number): void {
    if (this.#chunks !== null) return this.#chunks.copyIn(this.#copier, at, src, srcAt, n);
    const first = this.#cap - at;
    if (n <= first) {
      this.#copier.toSegment(this.#data + at, src, srcAt, n);
    } else {
      this.#copier.toSegment(this.#data + at, src, srcAt, first);
      this.#copier.toSegment(this.#data, src, srcAt + first, n - first);
    }
  }

  /** Reads n bytes from ring index `at` into dst. */
  #copyOut(at: number, dst: Uint8Array, n: number): void {
    if (this.#chunks !== null) return this.#chunks.copyOut(this.#copier, at, dst, 0, n);
    const first = this.#cap - at;
    if (n <= first) {
      this.#copier.fromSegment(dst, 0, this.#data + at, n);
    } else {
      this.#copier.fromSegment(dst, 0, this.#data + at, first);
      this.#copier.fromSegment(dst, first, this.#data, n - first);
    }
  }

  /**
   * `#copyOut` into an array made for the purpose: `set` from views of the segment, where the
   * copier's word loops would first build a view over the new array's buffer (reading `.buffer`
   * of a new array is slow in both engines).
   */
  #copyOutFresh(at: number, out: Uint8Array, n: number): void {
    let to = 0;
    for (const view of this.#viewsOver(this.#u8.buffer, at, n)) {
      out.set(view, to);
      to += view.length;
    }
  }

  /**
   * Moves the tail (at ring index `at`) n bytes on, after the bytes are in place, then collects
   * out-of-order data. The caller read and checked `at` once for its copy.
   */
  #publish(tail: number, at: number, n: number): number {
    if (!this.#producing) this.#becomeProducer();
    let moved = n;
    if (this.#ooo.count > 0) moved += this.#ooo.collect(tail, n);
    if (moved === 0) return 0;
    let index = at + moved;
    if (index >= this.#cap) index -= this.#cap;
    let next = tail - (this.#period - moved); // tail + moved - period, in int32 range
    if (next < 0) next += this.#period;
    this.#tailMark = next;
    this.#tailIdx = index;
    Atomics.store(this.#u32, this.#tail, next);
    // A system call only when a reader announced that it sleeps.
    if (Atomics.load(this.#u32, this.#dataWaiter) !== 0) this.#wake(this.#dataSeq, this.#dataWaiter);
    return moved;
  }

  /**
   * Moves the head (at ring index `at`) n bytes on; the caller checked n <= used, and says
   * whether n was all it saw stored (`drained`).
   */
  #consume(head: number, at: number, n: number, drained: boolean): void {
    if (!this.#consuming) this.#becomeConsumer();
    if (this.#chunks !== null) this.#chunks.passed(at, n, drained); // before the head lets the producer at them
    let index = at + n;
    if (index >= this.#cap) index -= this.#cap;
    let next = head - (this.#period - n);
    if (next < 0) next += this.#period;
    this.#headMark = next;
    this.#headIdx = index;
    Atomics.store(this.#u32, this.#head, next);
    if (Atomics.load(this.#u32, this.#spaceWaiter) !== 0 && this.#spaceDue(next)) {
      this.#wake(this.#spaceSeq, this.#spaceWaiter);
    }
  }

  /**
   * Whether the sleeping writer's wait can end now that the head is `head`: as many bytes free
   * as it said it waits for. A word that makes no sense (0, past the capacity, a bad tail) rings
   * it anyway, and the writer's own look decides: a wrong word costs a wake-up, never a hang.
   */
  #spaceDue(head: number): boolean {
    const wanted = Atomics.load(this.#u32, this.#spaceWanted);
    if (wanted === 0 || wanted > this.#cap) return true;
    const tail = Atomics.load(this.#u32, this.#tail);
    if (tail >= this.#period) return true;
    const used = this.#dist(tail, head);
    return used > this.#cap || this.#limit() - used >= wanted;
  }

  /**
   * Bumps a sequence word and wakes its sleepers. When nobody was asleep, the waiter word may
   * name a process that died asleep: the waiters clear it then.
   */
  #wake(seq: number, waiter: number): void {
    this.#mem.sleeper.notify(seq, waiter, this.#offset);
  }

  /** Whether a wait for `kind` can end: data (or the end of the stream), or `n` free bytes. */
  #ready(kind: number, n: number): boolean {
    // The wait protocol runs the condition's check() before every ready(): no second check here.
    if (kind === DATA) return Atomics.load(this.#i32, this.#closed) !== 0 || this.#used(this.#counter(this.#head)) > 0;
    return this.#free(this.#counter(this.#tail)) >= n;
  }

  /** What a wait for `kind` waits on: its chunk, its words, the condition, the peer. */
  #watch(kind: number, n: number): Watch {
    return {
      chunk: this.#offset,
      seq: kind === DATA ? this.#dataSeq : this.#spaceSeq,
      waiter: kind === DATA ? this.#dataWaiter : this.#spaceWaiter,
      check: () => this.#check(),
      ready: () => this.#ready(kind, n),
      peer: () => this.#peerOf(kind),
      rest: kind === DATA ? () => this.#restIfEmpty() : undefined,
    };
  }

  #peerGone(kind: number): SegmentError {
    const peer = this.#peerOf(kind);
    const pid = this.#mem.liveness.pidOf(peer);
    return new SegmentError(
      "peer-gone",
      `the ${kind === DATA ? "producer" : "consumer"} of fifo at offset ${this.#offset} of segment ` +
        `"${this.#mem.name}"${pid ? ` (pid ${pid})` : ""} died`,
    );
  }

  /** Registers the side `kind` waits as (a reader waits for data, a writer for space). */
  #side(kind: number): void {
    this.#check();
    if (kind === DATA) {
      if (!this.#consuming) this.#becomeConsumer();
      this.#restIfEmpty();
    } else if (!this.#producing) this.#becomeProducer();
  }

  /** A reader about to wait on an empty chunked fifo gives back its spare chunks. */
  #restIfEmpty(): void {
    if (this.#chunks === null) return;
    const head = this.#counter(this.#head);
    if (this.#used(head) === 0) this.#chunks.rest(this.#headIndex(head));
  }

  #waitSync(kind: number, n: number, timeoutMs: number | undefined): boolean {
    this.#side(kind);
    if (kind === SPACE) Atomics.store(this.#u32, this.#spaceWanted, n);
    const condition: WaitCondition = {
      seq: kind === DATA ? this.#dataSeq : this.#spaceSeq,
      waiter: kind === DATA ? this.#dataWaiter : this.#spaceWaiter,
      check: () => this.#check(),
      ready: () => this.#ready(kind, n),
      peerGone: () => {
        const peer = this.#peerOf(kind);
        return peer !== 0 && !this.#mem.liveness.isAlive(peer) ? this.#peerGone(kind) : undefined;
      },
    };
    return waitSync(this.#mem, condition, timeoutMs);
  }

  /** How a wait for `kind` ends: false at the timeout, true when ready, else the peer died. */
  #finishFor(kind: number, n: number): (ready: readonly number[]) => boolean {
    return (ready) => {
      if (ready.length === 0) return false;
      if (this.#ready(kind, n)) return true;
      throw this.#peerGone(kind);
    };
  }

  #waitAsync(kind: number, n: number, options: WaitOptions | undefined): Promise<boolean> {
    try {
      this.#side(kind);
      // The writer says how much it waits for before it registers as asleep, so that the reader
      // rings it only when that much is free (see #spaceDue).
      if (kind === SPACE) Atomics.store(this.#u32, this.#spaceWanted, n);
      if (kind === DATA) return this.#mem.sleeper.sleep(this.#dataWatches, options ?? NO_OPTIONS, this.#dataFinish);
      return this.#mem.sleeper.sleep([this.#watch(kind, n)], options ?? NO_OPTIONS, this.#finishFor(kind, n));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Waits until there is data to read or the producer has closed the fifo; true then, false on
   * timeout. Resolves at once when that already holds; otherwise sleeps without blocking the
   * event loop (and without a thread). Rejects with `SegmentError` "peer-gone" when the
   * producer's process died and nothing is left to read. A loop that waits for more than is there
   * (a whole message) must read `isClosed` before each read and stop when a read came up short on
   * a closed fifo: this resolves at once on a closed fifo, and such a loop would never yield.
   */
  waitForData(options?: WaitOptions): Promise<boolean> {
    return this.#waitAsync(DATA, 0, options);
  }

  /**
   * Waits until `n` bytes can be written; true then, false on timeout. Rejects with
   * "peer-gone" when the consumer's process died.
   */
  waitForSpace(n: number, options?: WaitOptions): Promise<boolean> {
    this.#checkSpace(n);
    return this.#waitAsync(SPACE, n, options);
  }

  /** {@link waitForData} that blocks the calling thread (for scripts and Workers). */
  waitForDataSync(options: { timeoutMs?: number } = {}): boolean {
    return this.#waitSync(DATA, 0, options.timeoutMs);
  }

  /** {@link waitForSpace} that blocks the calling thread. */
  waitForSpaceSync(n: number, options: { timeoutMs?: number } = {}): boolean {
    this.#checkSpace(n);
    return this.#waitSync(SPACE, n, options.timeoutMs);
  }

  /** @ignore @internal What `waitAny` watches: data, the end, or the producer's death. */
  get dataWatch(): Watch {
    this.#side(DATA);
    return this.#dataWatch;
  }

  /** @ignore @internal The sleeper of this fifo's segment. */
  get sleeper(): Sleeper {
    return this.#mem.sleeper;
  }

  /** Whether the producer's process died (a consumer's question). */
  get peerGone(): boolean {
    this.#check();
    const peer = this.#peerOf(DATA);
    return peer !== 0 && !this.#mem.liveness.isAlive(peer);
  }

  #checkSpace(n: number): void {
    checkCount("n", n);
    if (n > this.#maxSize) throw new RangeError(`cannot wait for ${n} free bytes in a fifo of ${this.#maxSize}`);
  }

  /** Ends the stream (the producer's call): readers drain what is left, then see the end. */
  close(): void {
    this.#end(CLOSED_CLEAN);
  }

  /**
   * Ends the stream as failed (the producer's call): the reader's stream errors with
   * `SegmentError` "aborted" once it drained what was written, instead of ending cleanly.
   */
  abort(): void {
    this.#end(CLOSED_ABORTED);
  }

  #end(how: number): void {
    this.#check();
    if (!this.#producing) this.#becomeProducer();
    Atomics.compareExchange(this.#i32, this.#closed, 0, how); // the first end stands
    if (Atomics.load(this.#u32, this.#dataWaiter) !== 0) this.#wake(this.#dataSeq, this.#dataWaiter);
  }

  /** True once the producer closed (or aborted) the fifo; there may still be bytes to read. */
  get isClosed(): boolean {
    this.#check();
    return Atomics.load(this.#i32, this.#closed) !== 0;
  }

  /** True when the producer ended the fifo with `abort()`. */
  get isAborted(): boolean {
    this.#check();
    return Atomics.load(this.#i32, this.#closed) === CLOSED_ABORTED;
  }

  /**
   * The fifo's bytes as a byte stream, read as they arrive (sleeping in between) and ending
   * once the producer closed the fifo and everything was read. One reader per fifo. A default
   * read gets a new array of what is readable (up to 1 MiB); a BYOB reader
   * (`getReader({ mode: "byob" })`) has its own buffer filled instead, with nothing allocated.
   */
  get readable(): ReadableStream<Uint8Array> {
    this.#check();
    return (this.#readable ??= readableOf(this));
  }

  /**
   * A stream that writes into the fifo, waiting for room as needed (back pressure); closing
   * it closes the fifo.
   */
  get writable(): WritableStream<Uint8Array> {
    this.#check();
    return (this.#writable ??= writableOf(this));
  }

  /**
   * Writes as much of `src` as fits (0 when full), then collects out-of-order data that became
   * contiguous. Returns the number of bytes that became readable in order, which can exceed
   * `src.length` when out-of-order ranges joined.
   */
  enqueue(src: Uint8Array): number {
    return this.#put(src, false);
  }

  /** The two writes: as much as fits, or (exact) all of `src` or nothing (-1). */
  #put(src: Uint8Array, exact: boolean): number {
    this.#check();
    checkBytes("src", src);
    this.#checkAlias("src", src);
    const tail = this.#own(this.#tail);
    let free = this.#limit() - this.#dist(tail, this.#cachedHead);
    if (free < src.length) free = this.#free(tail);
    if (exact && free < src.length) return -1;
    let n = src.length < free ? src.length : free;
    const at = this.#tailIndex(tail);
    if (this.#chunks !== null && n > 0) {
      n = this.#provide(tail, at, 0, n);
      if (exact && n < src.length) return -1;
    }
    if (n > 0) this.#copyIn(at, src, 0, n);
    return this.#publish(tail, at, n);
  }

  /**
   * A chunked fifo's producer: makes sure the n ring bytes from index `at` (`offset` bytes past
   * the tail) have chunks; returns how many from `at` do (fewer when the segment has no more).
   */
  #provide(tail: number, at: number, offset: number, n: number): number {
    const chunks = this.#chunks!;
    if (chunks.present(at, n)) return n;
    const head = this.#counter(this.#head);
    const ooo = this.#ooo.extent(tail);
    const reach = this.#dist(tail, head) + (offset + n > ooo ? offset + n : ooo);
    return chunks.provide(at, n, this.#headIndex(head), reach);
  }

  /**
   * Writes all of `src` at `offset` bytes past the tail without moving it, and records the
   * range as out of order; false (and nothing written) when `offset + src.length` exceeds the
   * free space.
   */
  enqueueWithOffset(offset: number, src: Uint8Array): boolean {
    this.#check();
    if (!this.#producing) this.#becomeProducer();
    checkCount("offset", offset);
    checkBytes("src", src);
    this.#checkAlias("src", src);
    const tail = this.#counter(this.#tail);
    if (offset + src.length > this.#free(tail)) return false;
    if (src.length === 0) return true;
    let at = this.#tailIndex(tail) + (offset % this.#cap);
    if (at >= this.#cap) at -= this.#cap;
    if (this.#chunks !== null && this.#provide(tail, at, offset, src.length) < src.length) return false;
    this.#copyIn(at, src, 0, src.length);
    this.#ooo.add(tail, offset, src.length);
    return true;
  }

  /** Reads up to `dst.length` bytes into `dst` and removes them; returns how many. */
  dequeue(dst: Uint8Array): number {
    return this.#take(dst, false);
  }

  /** The two reads: as much as there is, or (exact) all of `dst` or nothing (-1). */
  #take(dst: Uint8Array, exact: boolean): number {
    this.#check();
    checkBytes("dst", dst);
    this.#checkAlias("dst", dst);
    const head = this.#own(this.#head);
    let used = this.#dist(this.#cachedTail, head);
    if (used < dst.length || used > this.#cap) used = this.#used(head);
    if (exact && used < dst.length) return -1;
    const n = dst.length < used ? dst.length : used;
    if (n === 0) {
      // An empty chunked fifo: its spare chunks go back once the reader has found it empty for a
      // while, or at once when the producer closed it.
      if (used === 0 && this.#chunks !== null) {
        if (Atomics.load(this.#i32, this.#closed) !== 0) this.#chunks.rest(this.#headIndex(head));
        else this.#chunks.idle(this.#headIndex(head));
      }
      return 0;
    }
    const at = this.#headIndex(head);
    this.#copyOut(at, dst, n);
    // Drained by this read, by a fresh look at the tail (a chunked fifo gives back its spares then).
    this.#consume(head, at, n, n === used && (this.#chunks === null || n === this.#used(head)));
    return n;
  }

  /**
   * Writes all of `src` or nothing: false (and nothing written) when it does not fit. For framed
   * messages, which must never be split by a full fifo. Collects out-of-order data like
   * `enqueue`.
   */
  enqueueExact(src: Uint8Array): boolean {
    return this.#put(src, true) >= 0;
  }

  /** Reads exactly `dst.length` bytes into `dst`, or nothing: false when fewer are readable. */
  dequeueExact(dst: Uint8Array): boolean {
    return this.#take(dst, true) >= 0;
  }

  /**
   * @ignore @internal For framed readers (connections) and the readable stream: a new array of
   * the `n` bytes that start `skip` bytes past the head, and the `skip + n` bytes removed with one
   * move of the head; null (nothing removed) when fewer are readable. The array is made here, so
   * it needs no check that it is the segment's memory (which asks the mappings, an FFI call, for
   * every new array).
   */
  dequeueFresh(skip: number, n: number): Uint8Array<ArrayBuffer> | null {
    this.#check();
    checkCount("skip", skip);
    checkCount("n", n);
    const head = this.#own(this.#head);
    const used = this.#used(head);
    if (used < skip + n) return null;
    const out = new Uint8Array(n);
    const headAt = this.#headIndex(head);
    let at = headAt + skip;
    if (at >= this.#cap) at -= this.#cap;
    if (n > 0) this.#copyOutFresh(at, out, n);
    // The chunks' rule sees one read from the head: the skipped bytes were read too (peeked).
    if (skip + n > 0) this.#consume(head, headAt, skip + n, skip + n === used);
    return out;
  }

  /** Copies up to `dst.length` bytes starting `offset` bytes past the head; does not remove them. */
  peek(offset: number, dst: Uint8Array): number {
    this.#check();
    if (!this.#consuming) this.#becomeConsumer();
    checkCount("offset", offset);
    checkBytes("dst", dst);
    this.#checkAlias("dst", dst);
    const head = this.#own(this.#head);
    let used = this.#dist(this.#cachedTail, head);
    if (used < offset + dst.length || used > this.#cap) used = this.#used(head);
    if (offset >= used) return 0;
    const n = Math.min(dst.length, used - offset);
    let at = this.#headIndex(head) + offset;
    if (at >= this.#cap) at -= this.#cap;
    this.#copyOut(at, dst, n);
    return n;
  }

  /** Removes up to `n` bytes without reading them; returns how many were removed. */
  dequeueDrop(n: number): number {
    this.#check();
    checkCount("n", n);
    const head = this.#counter(this.#head);
    const used = this.#used(head);
    const drop = Math.min(n, used);
    if (drop > 0) this.#consume(head, this.#headIndex(head), drop, drop === used);
    return drop;
  }

  /** Removes every readable byte; only safe while the producer is quiet. Returns how many. */
  dequeueDropAll(): number {
    this.#check();
    const head = this.#counter(this.#head);
    const used = this.#used(head);
    if (used > 0) this.#consume(head, this.#headIndex(head), used, true);
    return used;
  }

  /** Bytes the consumer can read now. */
  get maxDequeue(): number {
    this.#check();
    return this.#used(this.#counter(this.#head));
  }

  /** Bytes the producer can write now. */
  get maxEnqueue(): number {
    this.#check();
    return this.#free(this.#counter(this.#tail));
  }

  /**
   * Capacity in bytes: exactly what was asked for at allocation. For a chunked fifo, its size now
   * (see {@link setSize}).
   */
  get size(): number {
    return this.#limit();
  }

  /**
   * The most a chunked fifo's size can be set to (the ring its chunks cover); a contiguous
   * fifo's capacity.
   */
  get maxSize(): number {
    return this.#maxSize;
  }

  /** Whether the fifo's memory comes in chunks that follow its fill level (see `allocFifo`). */
  get chunked(): boolean {
    return this.#chunks !== null;
  }

  /** Bytes of each chunk of a chunked fifo; a contiguous fifo's whole ring. */
  get chunkSize(): number {
    return this.#chunks === null ? this.#cap : this.#chunks.chunkBytes;
  }

  /**
   * Chunks a chunked fifo's reader leaves in place for the writer while data flows (see
   * `FifoOptions.spareChunks`); 0 for a contiguous fifo.
   */
  get spareChunks(): number {
    return this.#chunks === null ? 0 : this.#chunks.spareChunks;
  }

  /** Chunks of memory the fifo holds now (always 1 for a contiguous fifo). */
  get chunkCount(): number {
    this.#check();
    return this.#chunks === null ? 1 : this.#chunks.count();
  }

  /** Bytes of data memory the fifo holds now: `chunkCount * chunkSize`. */
  get memoryBytes(): number {
    return this.chunkCount * this.chunkSize;
  }

  /**
   * Changes a chunked fifo's size, 1 to {@link maxSize} bytes (either side may call it). Set
   * below what is stored, nothing can be written until the reader drained below it (a receive
   * window of 0); the memory follows what is stored, not the size. A writer asleep for space is
   * woken to look again.
   */
  setSize(size: number): void {
    this.#check();
    if (this.#chunks === null) {
      throw new TypeError("only a chunked fifo's size can change (allocFifo with chunked: true)");
    }
    if (!Number.isSafeInteger(size) || size < 1 || size > this.#maxSize) {
      throw new RangeError(`a size must be an integer from 1 to ${this.#maxSize}, got ${size}`);
    }
    Atomics.store(this.#u32, this.#sizeWord, size);
    if (Atomics.load(this.#u32, this.#spaceWaiter) !== 0) this.#wake(this.#spaceSeq, this.#spaceWaiter);
  }

  /** True when nothing is readable. */
  get isEmpty(): boolean {
    return this.maxDequeue === 0;
  }

  /** True when nothing more can be written. */
  get isFull(): boolean {
    return this.maxEnqueue === 0;
  }

  /** This fifo's position in its segment: another process passes it to `segment.fifoAt`. */
  get offset(): number {
    return this.#offset;
  }

  /** The list the fifo was allocated for. */
  get list(): FifoList {
    return LIST_NAMES[this.#u32[(this.#offset + FF_LIST) >>> 2]] ?? "none";
  }

  /** A 32-bit word for the user, shared with every process that sees the fifo. */
  get tag(): number {
    return this.#word(FF_TAG);
  }
  set tag(value: number) {
    this.#setWord("tag", FF_TAG, value);
  }

  /** Session index of the side that created the fifo (as in the reference). */
  get masterSessionIndex(): number {
    return this.#word(FF_MASTER_SESSION);
  }
  set masterSessionIndex(value: number) {
    this.#setWord("masterSessionIndex", FF_MASTER_SESSION, value);
  }
  /** Thread index of the side that created the fifo. */
  get masterThreadIndex(): number {
    return this.#word(FF_MASTER_THREAD);
  }
  set masterThreadIndex(value: number) {
    this.#setWord("masterThreadIndex", FF_MASTER_THREAD, value);
  }
  /** Session index of the side that attached to the fifo. */
  get clientSessionIndex(): number {
    return this.#word(FF_CLIENT_SESSION);
  }
  set clientSessionIndex(value: number) {
    this.#setWord("clientSessionIndex", FF_CLIENT_SESSION, value);
  }
  /** Thread index of the side that attached to the fifo. */
  get clientThreadIndex(): number {
    return this.#word(FF_CLIENT_THREAD);
  }
  set clientThreadIndex(value: number) {
    this.#setWord("clientThreadIndex", FF_CLIENT_THREAD, value);
  }

  #word(field: number): number {
    return Atomics.load(this.#u32, (this.#offset + field) >>> 2);
  }

  #setWord(what: string, field: number, value: number): void {
    this.#check();
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`${what} must be a u32, got ${value}`);
    }
    Atomics.store(this.#u32, (this.#offset + field) >>> 2, value);
  }

  /** The out-of-order ranges, relative to the current tail, sorted and disjoint. */
  oooSegments(): OooSegment[] {
    this.#check();
    return this.#ooo.list(this.#counter(this.#tail));
  }

  /**
   * The range the last out-of-order write created or grew; null when that write lay inside an
   * existing range, after an in-order enqueue, or when there is none (VPP's semantics).
   */
  get newestOooSegment(): OooSegment | null {
    this.#check();
    return this.#ooo.newest(this.#counter(this.#tail));
  }

  /**
   * Sets the event flag; true only on the change from unset to set, which means the caller
   * must notify the peer.
   */
  setEvent(): boolean {
    this.#check();
    return Atomics.exchange(this.#i32, (this.#offset + FF_HAS_EVENT) >>> 2, 1) === 0;
  }

  /** Clears the event flag. The reader must check for data again after this. */
  unsetEvent(): void {
    this.#check();
    Atomics.exchange(this.#i32, (this.#offset + FF_HAS_EVENT) >>> 2, 0);
  }

  /** Whether the event flag is set. */
  get hasEvent(): boolean {
    this.#check();
    return Atomics.load(this.#i32, (this.#offset + FF_HAS_EVENT) >>> 2) !== 0;
  }

  /**
   * The producer asks the reader's side to say, after its dequeues, when a notification is due
   * (VPP's want_deq_ntf): `"always"`, after any dequeue that leaves at least
   * {@link dequeueThreshold} bytes free (until {@link clearDequeueNotification}); `"if-full"`,
   * when a dequeue ended a full fifo; `"if-empty"`, when a dequeue emptied it. The last two are
   * said once, until the producer calls {@link resetDequeueNotification}. The reader asks
   * {@link needsDequeueNotification} after a dequeue; how the notification travels (a message,
   * an event) is the application's. The library's own waits do not need this: a writer asleep in
   * `waitForSpace(n)` is rung only once n bytes are free.
   */
  addDequeueNotification(kind: DequeueNotification): void {
    this.#check();
    Atomics.or(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2, deqNtfFlag(kind));
  }

  /** Withdraws a request of {@link addDequeueNotification}. */
  removeDequeueNotification(kind: DequeueNotification): void {
    this.#check();
    Atomics.and(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2, ~deqNtfFlag(kind));
  }

  /** The dequeue notifications the producer asked for. */
  get dequeueNotifications(): DequeueNotification[] {
    this.#check();
    const want = Atomics.load(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2);
    return (Object.keys(DEQ_NTF_FLAGS) as DequeueNotification[]).filter((k) => (want & DEQ_NTF_FLAGS[k]) !== 0);
  }

  /** Free bytes an `"always"` dequeue notification waits for (0: any dequeue), up to the capacity. */
  get dequeueThreshold(): number {
    this.#check();
    return Math.min(Atomics.load(this.#u32, (this.#offset + FF_DEQ_THRESHOLD) >>> 2), this.#limit());
  }
  set dequeueThreshold(bytes: number) {
    this.#check();
    checkCount("dequeueThreshold", bytes);
    if (bytes > this.#limit()) throw new RangeError(`a threshold of ${bytes} bytes is past the size ${this.#limit()}`);
    Atomics.store(this.#u32, (this.#offset + FF_DEQ_THRESHOLD) >>> 2, bytes);
  }

  /**
   * The reader's question after a dequeue of `lastDequeued` bytes: whether the producer asked to
   * be told of it (see {@link addDequeueNotification}). The producer's words are read as they
   * are now and checked: a threshold past the capacity counts as the capacity.
   */
  needsDequeueNotification(lastDequeued: number): boolean {
    this.#check();
    checkCount("lastDequeued", lastDequeued);
    const base = this.#offset >>> 2;
    const want = Atomics.load(this.#i32, base + FF_WANT_DEQ_NTF / 4);
    if ((want & DEQ_NTF_ANY) === 0) return false;
    const used = this.#used(this.#counter(this.#head));
    const limit = this.#limit();
    if ((want & DEQ_NTF_ALWAYS) !== 0) {
      const threshold = Math.min(Atomics.load(this.#u32, base + FF_DEQ_THRESHOLD / 4), limit);
      if (limit - used >= threshold) return true;
    }
    if (Atomics.load(this.#i32, base + FF_HAS_DEQ_NTF / 4) !== 0) return false;
    if ((want & DEQ_NTF_IF_FULL) !== 0 && used < limit && used + lastDequeued >= limit) return true;
    return (want & DEQ_NTF_IF_EMPTY) !== 0 && used === 0;
  }

  /**
   * The reader's step after it sent a notification: withdraws `"always"` and marks the
   * `"if-full"` and `"if-empty"` ones as said. True when any notification was asked for.
   */
  clearDequeueNotification(): boolean {
    this.#check();
    const base = this.#offset >>> 2;
    const want = Atomics.and(this.#i32, base + FF_WANT_DEQ_NTF / 4, ~DEQ_NTF_ALWAYS);
    if ((want & (DEQ_NTF_IF_FULL | DEQ_NTF_IF_EMPTY)) !== 0) Atomics.store(this.#i32, base + FF_HAS_DEQ_NTF / 4, 1);
    return (want & DEQ_NTF_ANY) !== 0;
  }

  /** The producer's step to hear `"if-full"` and `"if-empty"` again after one was said. */
  resetDequeueNotification(): void {
    this.#check();
    Atomics.store(this.#i32, (this.#offset + FF_HAS_DEQ_NTF) >>> 2, 0);
  }

  /**
   * Whether any dequeue notification is asked for. Setting true asks for `"always"`, false
   * withdraws them all (the 2018 API's single flag).
   */
  get wantDequeueNotification(): boolean {
    this.#check();
    return Atomics.load(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2) !== 0;
  }
  set wantDequeueNotification(value: boolean) {
    this.#check();
    if (value) Atomics.or(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2, DEQ_NTF_ALWAYS);
    else Atomics.store(this.#i32, (this.#offset + FF_WANT_DEQ_NTF) >>> 2, 0);
  }

  /**
   * In-place views of the readable bytes, oldest first: up to two (one per chunk of a chunked
   * fifo). Follow with `dequeueDrop`.
   */
  readSegments(): Uint8Array[] {
    this.#check();
    if (!this.#consuming) this.#becomeConsumer();
    const head = this.#counter(this.#head);
    return this.#segments(this.#headIndex(head), this.#used(head));
  }

  /**
   * In-place views of the free space (at most `max` bytes of it), in order: up to two (one per
   * chunk of a chunked fifo, whose chunks are taken for them: pass `max` to take only what you
   * will write). Follow with `enqueueNocopy`.
   */
  writeSegments(max = Infinity): Uint8Array[] {
    this.#check();
    if (typeof max !== "number") throw new TypeError(`max must be a number, got ${typeof max}`);
    if (!(max >= 0)) throw new RangeError(`max must be a non-negative number, got ${max}`);
    if (!this.#producing) this.#becomeProducer();
    const tail = this.#counter(this.#tail);
    const at = this.#tailIndex(tail);
    let n = Math.min(this.#free(tail), Math.floor(max));
    if (this.#chunks !== null && n > 0) n = this.#provide(tail, at, 0, n);
    return this.#segments(at, n);
  }

  /**
   * Views over a lent buffer, never the segment's own: a caller that detaches one (a
   * `transfer()`, a postMessage transfer list) cannot break this fifo or the segment.
   */
  #segments(at: number, n: number): Uint8Array[] {
    if (n === 0) return [];
    return this.#viewsOver(this.#mem.lent(), at, n);
  }

  /** Views over `buffer` (the segment's memory) of the n > 0 ring bytes from ring index `at`, in order. */
  #viewsOver(buffer: ArrayBuffer | SharedArrayBuffer, at: number, n: number): Uint8Array[] {
    if (this.#chunks !== null) return this.#chunks.views(buffer, at, n);
    const first = Math.min(n, this.#cap - at);
    const views = [new Uint8Array(buffer, this.#data + at, first)];
    if (first < n) views.push(new Uint8Array(buffer, this.#data, n - first));
    return views;
  }

  /** Publishes `n` bytes written in place through `writeSegments`. Returns bytes now readable in order. */
  enqueueNocopy(n: number): number {
    this.#check();
    checkCount("n", n);
    const tail = this.#counter(this.#tail);
    const free = this.#free(tail);
    if (n > free) throw new RangeError(`cannot publish ${n} bytes: only ${free} free`);
    const at = this.#tailIndex(tail);
    if (this.#chunks !== null && n > 0 && this.#provide(tail, at, 0, n) < n) {
      throw new SegmentError("no-memory", `segment "${this.#mem.name}" has no chunk left for ${n} bytes`);
    }
    return this.#publish(tail, at, n);
  }

  /**
   * Places head and tail at `position` (any u32, taken modulo the counters' period), e.g. just
   * below 2^32 to test the wrap. Only when the fifo is empty, has no out-of-order data, and
   * neither side is active.
   */
  initPointers(position: number): void {
    this.#check();
    if (!Number.isInteger(position) || position < 0 || position > 0xffffffff) {
      throw new RangeError(`position must be a u32, got ${position}`);
    }
    const head = this.#counter(this.#head);
    if (this.#used(head) !== 0 || this.#ooo.count !== 0) throw new RangeError("initPointers needs an empty fifo");
    const at = position % this.#period;
    Atomics.store(this.#u32, this.#head, at);
    Atomics.store(this.#u32, this.#tail, at);
    this.#cachedHead = at;
    this.#cachedTail = at;
    this.#markHead(at);
    this.#markTail(at);
  }

  /** Whether the fifo's header still says it is allocated. */
  get isLive(): boolean {
    return !this.#freed && !this.#mem.deleted && Atomics.load(this.#u32, this.#seqWord) === this.#seq;
  }

  /** @ignore @internal The allocation number this handle belongs to. */
  get allocationSeq(): number {
    return this.#seq;
  }

  /** @ignore @internal Whether this object reads `mem` (the segment it came from). */
  isIn(mem: FifoMemory): boolean {
    return this.#mem === mem;
  }

  /** @ignore @internal Called by the segment when the fifo is freed through this object. */
  markFreed(): void {
    this.#ooo.clear();
    this.#freed = true;
  }

  /** A one-line description. */
  toString(): string {
    return describeLive(this, () => this.#describe(), `fifo @${this.#offset} (gone)`);
  }

  #describe(): string {
    const chunks = this.#chunks === null
      ? ""
      : `, ${this.#chunks.count()} chunks of ${this.#chunks.chunkBytes} (size at most ${this.#maxSize}, ` +
        `${this.#chunks.spareChunks} spare)`;
    return `fifo @${this.#offset}: ${this.maxDequeue} of ${this.size} bytes used, list ${this.list}, tag ${this.tag}` +
      `${chunks}, ${this.#ooo.count} out-of-order ranges`;
  }
}

/**
 * The size class of a chunked fifo's chunks when its header makes sense: a ring of `ring` bytes
 * in chunks of `chunkBytes` whose table fits a header chunk of `sizeClass`; -1 when it does not.
 */
function chunkedClass(ring: number, chunkBytes: number, sizeClass: number): number {
  const chunkClass = chunkClassOf(chunkBytes);
  const fits = ring >= 2 * chunkBytes && ring % chunkBytes === 0 && ring <= classBytes(SIZE_CLASSES - 1) &&
    (ring / chunkBytes) * CHUNK_TABLE_STRIDE <= classBytes(sizeClass);
  return chunkClass >= 0 && fits ? chunkClass : -1;
}
