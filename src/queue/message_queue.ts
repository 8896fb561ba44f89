/**
 * A message queue in a segment, after VPP's svm_msg_q: many producers, in any number of
 * processes, one consumer; messages of fixed-size slots in one or several rings (a message
 * goes to the first ring, in the order given, whose slots hold it and that has room).
 * Layout: see "Message queue" in `layout.ts`.
 *
 * Lock-free, and safe against a producer killed at any instruction:
 *
 * - A producer claims the slot at a ring's tail with one compare-and-swap of the slot's writer
 *   word from 0 to its process tag, while the slot's state says it is free for exactly that
 *   position: the claim and the claimer's identity are one atomic step. The claimer then writes
 *   the position it claimed into the slot, and any producer that finds the tail's slot claimed
 *   for the tail's position moves the tail on, so a producer that dies after claiming holds up
 *   no other producer. (A producer with a stale position can hold a writer word for an instant
 *   before it sees the state and gives it back: such a hold moves no tail, and a holder that
 *   dies in that instant is skipped by the consumer like a dead claimer.)
 * - The claimer writes the message and publishes it with a release store of the state
 *   ("ready at this position"). The consumer reads ready slots in position order, then frees
 *   each (writer 0, then state "free for the position one lap on").
 * - A slot claimed by a process that has died (its process-slot lock is gone) is skipped by the
 *   consumer: the dead producer's half-written message is dropped, never delivered.
 * - Order per producer across rings: each message carries its sending handle's id and a
 *   sequence number (1, 2, ...), and the consumer delivers a ring's head only when it is that
 *   sender's next message. A producer publishes a message before it claims its next one, so
 *   while no head is being written, some ring's head is always its sender's next. A consumer
 *   that starts after an earlier one read some messages takes up unknown senders where they are.
 *
 * Every word read from shared memory is checked at the moment of use; a scribbling peer gets
 * `SegmentError` "corrupt", never an access outside the queue's chunk.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import type { FifoMemory } from "../fifo/fifo.ts";
import {
  classBytes,
  FF_ALLOC_SEQ,
  FIFO_HEADER_SIZE,
  KIND_MESSAGE_QUEUE,
  messageQueueHeaderBytes,
  messageSlotStride,
  MQ_DATA_SEQ,
  MQ_DATA_WAITER,
  MQ_MAGIC,
  MQ_MAX_RINGS,
  MQ_RING_COUNT,
  MQ_RING_SIZE,
  MQ_RINGS,
  MQ_SPACE_SEQ,
  MQ_SPACE_SLEEPER_WORDS,
  MQ_SPACE_SLEEPERS,
  MQ_SPACE_WAITER,
  MQR_BASE,
  MQR_HEAD,
  MQR_SLOT_BYTES,
  MQR_SLOTS,
  MQR_STRIDE,
  MQR_TAIL,
  MQS_CLAIM_POS,
  MQS_LENGTH,
  MQS_PAYLOAD,
  MQS_SENDER,
  MQS_SENDER_SEQ,
  MQS_STATE,
  MQS_WRITER,
  ringPeriod,
} from "../layout.ts";
import type { Liveness } from "../segment/process_table.ts";
import { describeLive, readLiveChunk } from "../segment/chunk.ts";
import type { WaitOptions } from "../fifo/fifo.ts";
import { type PassedBuffer, refuseOwnMemory } from "../segment/own_memory.ts";
import { checkSleepOptions, type Watch } from "../wake/sleeper.ts";
import { deadlineOf, Line } from "../wake/queued.ts";

/** What `send` returns for a message sent at once. */
const SENT: Promise<boolean> = Promise.resolve(true);
const TIMED_OUT = () => false;
const NONE = () => -1;

/** One ring of a queue: how many slots, and how many payload bytes each holds. */
export interface RingSpec {
  /** Slots in the ring, 1 to 2^20. */
  readonly slots: number;
  /** Payload bytes of each slot, 1 to 1 MiB. */
  readonly slotSize: number;
}

/** What `segment.allocMessageQueue` takes: one ring, or several. */
export type MessageQueueSpec = RingSpec | { readonly rings: readonly RingSpec[] };

/** What a queue's memory must offer: the fifo's views plus who this process is. */
export interface MessageQueueMemory extends FifoMemory {
  readonly liveness: Liveness;
}

const MAX_SLOTS = 1 << 20;
const MAX_SLOT_SIZE = 1 << 20;
/** How long a claimed, unpublished slot may hold up the consumer before its writer's life is checked. */
const STUCK_CHECK_MS = 20;
/** What the consumer does with a claimed, unpublished head (see #writerDead). */
const WAIT = 0;
const DROP = 1;
const AGAIN = 2;

/** Checks a spec and returns its rings. */
export function ringsOf(spec: MessageQueueSpec): RingSpec[] {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError("allocMessageQueue takes { slots, slotSize } or { rings }");
  }
  const rings = "rings" in spec ? [...spec.rings] : [spec];
  if (rings.length < 1 || rings.length > MQ_MAX_RINGS) {
    throw new RangeError(`a message queue has 1 to ${MQ_MAX_RINGS} rings, got ${rings.length}`);
  }
  for (const ring of rings) {
    const { slots, slotSize } = ring ?? {};
    if (!Number.isSafeInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
      throw new RangeError(`slots must be an integer from 1 to ${MAX_SLOTS}, got ${slots}`);
    }
    if (!Number.isSafeInteger(slotSize) || slotSize < 1 || slotSize > MAX_SLOT_SIZE) {
      throw new RangeError(`slotSize must be an integer from 1 to ${MAX_SLOT_SIZE}, got ${slotSize}`);
    }
  }
  return rings;
}

/** Bytes a queue of these rings needs in its chunk's data area. */
export function messageQueueBytes(rings: readonly RingSpec[]): number {
  let bytes = messageQueueHeaderBytes(rings.length);
  for (const r of rings) bytes += r.slots * messageSlotStride(r.slotSize);
  return bytes;
}

/** Writes a fresh queue's header and slots into the data area at `data` (a chunk just allocated). */
export function formatMessageQueue(u32: Uint32Array, data: number, rings: readonly RingSpec[]): void {
  const d = data >>> 2;
  u32.fill(0, d, d + messageQueueHeaderBytes(rings.length) / 4);
  let base = messageQueueHeaderBytes(rings.length);
  rings.forEach((ring, r) => {
    const stride = messageSlotStride(ring.slotSize);
    const at = d + (MQ_RINGS + r * MQ_RING_SIZE) / 4;
    u32[at + MQR_SLOTS / 4] = ring.slots;
    u32[at + MQR_SLOT_BYTES / 4] = ring.slotSize;
    u32[at + MQR_STRIDE / 4] = stride;
    u32[at + MQR_BASE / 4] = base;
    for (let i = 0; i < ring.slots; i++) {
      const s = (data + base + i * stride) >>> 2;
      u32[s + MQS_STATE / 4] = i * 4; // free for position i
      u32[s + MQS_WRITER / 4] = 0;
      u32[s + MQS_CLAIM_POS / 4] = 0;
    }
    base += ring.slots * stride;
  });
  u32[d + MQ_RING_COUNT / 4] = rings.length;
  Atomics.store(u32, d, MQ_MAGIC);
}

/** A random non-zero id for a sending handle. */
function senderId(): number {
  const id = new Uint32Array(1);
  do crypto.getRandomValues(id); while (id[0] === 0);
  return id[0];
}

/** The error for a receive from inside a handler of the same queue's `receiveBatch`. */
function receiveInHandler(): never {
  throw new TypeError(
    "tryReceive, receive or receiveBatch was called from inside a receiveBatch handler of the same queue",
  );
}

/** A message queue in a segment. Get one from `segment.allocMessageQueue` or `segment.messageQueueAt`. */
export class MessageQueue {
  readonly #mem: MessageQueueMemory;
  readonly #u32: Uint32Array;
  readonly #u8: Uint8Array;
  readonly #offset: number;
  readonly #seq: number;
  readonly #seqWord: number;
  readonly #dataSeq: number;
  readonly #dataWaiter: number;
  readonly #spaceSeq: number;
  readonly #spaceWaiter: number;
  /** This handle's sends that wait for room, and its receives that wait for a message, in call order. */
  readonly #sends = new Line();
  readonly #receives = new Line();
  /** The first word of the bits of sleeping producer processes. */
  readonly #spaceSleepers: number;
  /** Marks this process among them (a producer's announce). */
  readonly #markAsleep: () => void;
  // Each ring's geometry, read once from the header and checked against the chunk.
  readonly #count: number;
  readonly #slots: Int32Array;
  readonly #slotBytes: Int32Array;
  readonly #stride: Int32Array;
  readonly #baseWord: Int32Array; // u32 index of each ring's first slot
  readonly #strideWords: Int32Array;
  readonly #period: Int32Array;
  readonly #tailWord: Int32Array;
  readonly #headWord: Int32Array;
  readonly #maxMessage: number;
  readonly #capacity: number;
  /** This handle as a sender: its id and the sequence number of its last message. */
  readonly #id = senderId();
  /** This process's tag: what a claim writes into a slot's writer word. */
  readonly #me: number;
  #sent = 0;
  /** The consumer's heads during a call; published to the shared head words once, at its end. */
  readonly #heads: Int32Array;
  /** The consumer's last delivered sequence number per sender (only with several rings). */
  readonly #delivered = new Map<number, number>();
  /** A slot the consumer found claimed and unpublished: which position, and since when. */
  #stuckAt = -1;
  #stuckSince = 0;
  #freed = false;
  /**
   * True while a batch hands messages to its handler: a receive from inside it would hand the
   * batch's current message again and free its slot twice (a producer may have refilled it).
   */
  #batching = false;
  #srcOk: Uint8Array | null = null;
  #dstOk: Uint8Array | null = null;
  readonly #srcPassed: PassedBuffer = { buffer: null };
  readonly #dstPassed: PassedBuffer = { buffer: null };
  readonly #views: (Uint8Array | undefined)[][];
  #viewsOf: ArrayBuffer | SharedArrayBuffer | undefined;

  /** @ignore @internal Use `segment.allocMessageQueue` or `segment.messageQueueAt`. */
  constructor(mem: MessageQueueMemory, offset: number, chunkEnd: number) {
    const { seq, sizeClass } = readLiveChunk(mem, offset, chunkEnd, KIND_MESSAGE_QUEUE, "message queue");
    const u32 = mem.u32;
    const w = offset >>> 2;
    const data = offset + FIFO_HEADER_SIZE;
    const d = data >>> 2;
    const room = classBytes(sizeClass);
    const count = Atomics.load(u32, d + MQ_RING_COUNT / 4);
    if (Atomics.load(u32, d) !== MQ_MAGIC || count < 1 || count > MQ_MAX_RINGS) {
      throw new SegmentError("corrupt", `message queue at offset ${offset}: bad header (${count} rings)`);
    }
    this.#mem = mem;
    this.#u32 = u32;
    this.#u8 = mem.u8;
    this.#offset = offset;
    this.#seq = seq;
    this.#seqWord = w + FF_ALLOC_SEQ / 4;
    this.#dataSeq = d + MQ_DATA_SEQ / 4;
    this.#dataWaiter = d + MQ_DATA_WAITER / 4;
    this.#spaceSeq = d + MQ_SPACE_SEQ / 4;
    this.#spaceWaiter = d + MQ_SPACE_WAITER / 4;
    this.#spaceSleepers = d + MQ_SPACE_SLEEPERS / 4;
    const slot = mem.liveness.ownTag & 0xff;
    const mark = this.#spaceSleepers + (slot >>> 5);
    const bit = 1 << (slot & 31);
    this.#markAsleep = () => void Atomics.or(u32, mark, bit);
    this.#count = count;
    this.#slots = new Int32Array(count);
    this.#slotBytes = new Int32Array(count);
    this.#stride = new Int32Array(count);
    this.#baseWord = new Int32Array(count);
    this.#strideWords = new Int32Array(count);
    this.#period = new Int32Array(count);
    this.#tailWord = new Int32Array(count);
    this.#headWord = new Int32Array(count);
    let end = messageQueueHeaderBytes(count);
    let max = 0;
    let capacity = 0;
    for (let r = 0; r < count; r++) {
      const at = d + (MQ_RINGS + r * MQ_RING_SIZE) / 4;
      const slots = Atomics.load(u32, at + MQR_SLOTS / 4);
      const slotBytes = Atomics.load(u32, at + MQR_SLOT_BYTES / 4);
      const stride = Atomics.load(u32, at + MQR_STRIDE / 4);
      const base = Atomics.load(u32, at + MQR_BASE / 4);
      if (
        slots < 1 || slots > MAX_SLOTS || slotBytes < 1 || slotBytes > MAX_SLOT_SIZE ||
        stride !== messageSlotStride(slotBytes) || base !== end || base + slots * stride > room
      ) {
        throw new SegmentError("corrupt", `message queue at offset ${offset}: ring ${r} does not fit its chunk`);
      }
      end = base + slots * stride;
      this.#slots[r] = slots;
      this.#slotBytes[r] = slotBytes;
      this.#stride[r] = stride;
      this.#baseWord[r] = (data + base) >>> 2;
      this.#strideWords[r] = stride >>> 2;
      this.#period[r] = ringPeriod(slots);
      this.#tailWord[r] = at + MQR_TAIL / 4;
      this.#headWord[r] = at + MQR_HEAD / 4;
      if (slotBytes > max) max = slotBytes;
      capacity += slots;
    }
    this.#maxMessage = max;
    this.#capacity = capacity;
    this.#views = Array.from({ length: count }, () => []);
    this.#heads = new Int32Array(count);
    this.#me = mem.liveness.ownTag;
  }

  /** Reads the shared heads into the consumer's own, at the start of a consumer call. */
  #loadHeads(): void {
    for (let r = 0; r < this.#count; r++) this.#heads[r] = this.#position(r, this.#headWord[r]);
  }

  /** Publishes the heads that moved: one store per ring per call, however many messages it read. */
  #publishHeads(): void {
    for (let r = 0; r < this.#count; r++) {
      if (Atomics.load(this.#u32, this.#headWord[r]) !== this.#heads[r]) {
        Atomics.store(this.#u32, this.#headWord[r], this.#heads[r]);
      }
    }
  }

  #check(): void {
    if (this.#gone() || Atomics.load(this.#u32, this.#seqWord) !== this.#seq) this.#unusable();
  }

  /** Whether this handle's memory is no longer its own: freed through it, or its segment deleted. */
  #gone(): boolean {
    return this.#freed || this.#mem.deleted;
  }

  #unusable(): never {
    if (this.#mem.deleted) throw new SegmentError("deleted", `segment "${this.#mem.name}" was deleted`);
    throw new SegmentError("freed", `message queue at offset ${this.#offset} of segment "${this.#mem.name}" was freed`);
  }

  /** Refuses a view of the segment's own memory; remembers the last array that passed, per direction. */
  #checkOwn(what: "a message" | "dst", view: Uint8Array): void {
    refuseOwnMemory(
      view,
      this.#u8.buffer,
      this.#mem,
      what === "dst" ? this.#dstPassed : this.#srcPassed,
      `${what} must not be a view of the segment's own memory; copy it through a buffer of your own`,
    );
    if (what === "dst") this.#dstOk = view;
    else this.#srcOk = view;
  }

  #corrupt(what: string): never {
    throw new SegmentError(
      "corrupt",
      `message queue at offset ${this.#offset} of segment "${this.#mem.name}": ${what}`,
    );
  }

  /** A ring position read from its word, checked against the ring's period. */
  #position(r: number, word: number): number {
    const p = Atomics.load(this.#u32, word);
    if (p >= this.#period[r]) this.#corrupt(`ring ${r} position ${p} is past its period ${this.#period[r]}`);
    return p;
  }

  #next(r: number, p: number): number {
    const n = p + 1;
    return n === this.#period[r] ? 0 : n;
  }

  /** The u32 index of the slot of position `p` in ring `r` (int32 arithmetic throughout). */
  #slot(r: number, p: number): number {
    return this.#baseWord[r] + (p % this.#slots[r]) * this.#strideWords[r];
  }

  // ---- producers ---------------------------------------------------------------------------

  /**
   * Sends one message if a ring that holds it has a free slot: true then, false when every such
   * ring is full. A message longer than the largest slot is a RangeError.
   */
  trySend(bytes: Uint8Array): boolean {
    this.#checkMessage(bytes);
    return this.#offer(bytes);
  }

  /** `trySend` of a checked message. */
  #offer(bytes: Uint8Array): boolean {
    for (let r = 0; r < this.#count; r++) {
      if (bytes.length <= this.#slotBytes[r] && this.#trySendTo(r, bytes)) return true;
    }
    return false;
  }

  /** Throws what a message that cannot be sent (or a queue that cannot be used) deserves. */
  #checkMessage(bytes: Uint8Array): void {
    this.#check();
    if (!(bytes instanceof Uint8Array)) throw new TypeError("a message must be a Uint8Array");
    if (bytes.length > this.#maxMessage) {
      throw new RangeError(`a message of ${bytes.length} bytes does not fit the largest slot (${this.#maxMessage})`);
    }
    if (bytes !== this.#srcOk) this.#checkOwn("a message", bytes);
  }

  /** Claims, fills and publishes a slot of ring `r`; false when the ring is full. */
  #trySendTo(r: number, bytes: Uint8Array): boolean {
    const u32 = this.#u32;
    const me = this.#me;
    const n = this.#slots[r];
    const period = this.#period[r];
    let held = 0;
    for (let attempt = 0;; attempt++) {
      if (attempt > 4 * n + 256) this.#corrupt(`ring ${r} never offers a slot to claim`);
      const p = this.#position(r, this.#tailWord[r]);
      const s = this.#slot(r, p);
      const state = Atomics.load(u32, s + MQS_STATE / 4);
      if (state === p * 4) {
        // Free for p: claim it by writing our tag into its writer word.
        if (Atomics.compareExchange(u32, s + MQS_WRITER / 4, 0, me) !== 0) {
          // Claimed for p by another: help move the tail on. Held without such a claim (a stale
          // producer's instant, or a claimer that died before recording p): busy, like full.
          if (Atomics.load(u32, s + MQS_CLAIM_POS / 4) === p + 1) {
            Atomics.compareExchange(u32, this.#tailWord[r], p, this.#next(r, p));
          } else if (++held > 64) {
            return false;
          }
          continue;
        }
        if (Atomics.load(u32, s + MQS_STATE / 4) !== p * 4) {
          // The slot went round a whole lap between our two looks: give it back and look again.
          Atomics.compareExchange(u32, s + MQS_WRITER / 4, me, 0);
          continue;
        }
        // 0 means no claim recorded. A plain store: the compare-and-swap of the tail right after
        // it is sequentially consistent, so whoever sees the tail moved also sees the claim.
        u32[s + MQS_CLAIM_POS / 4] = p + 1;
        Atomics.compareExchange(u32, this.#tailWord[r], p, this.#next(r, p));
        const at = s * 4;
        u32[s + MQS_SENDER / 4] = this.#id;
        u32[s + MQS_SENDER_SEQ / 4] = ++this.#sent >>> 0;
        u32[s + MQS_LENGTH / 4] = bytes.length;
        // Nothing between the claim and the publish may throw, or the slot would stay claimed for
        // good: a view whose buffer was transferred (or left out of bounds by a shrink) reads as
        // empty, and `set` would throw on it even with nothing to copy.
        if (bytes.length !== 0) this.#u8.set(bytes, at + MQS_PAYLOAD);
        Atomics.store(u32, s + MQS_STATE / 4, p * 4 + 1); // ready at p
        if (Atomics.load(u32, this.#dataWaiter) !== 0) {
          this.#mem.sleeper.notify(this.#dataSeq, this.#dataWaiter, this.#offset);
        }
        return true;
      }
      if (state === p * 4 + 1) {
        Atomics.compareExchange(u32, this.#tailWord[r], p, this.#next(r, p)); // published: the tail lags
        continue;
      }
      const previous = (p - n + period) % period;
      if (state === previous * 4 || state === previous * 4 + 1) return false; // the lap before is not read yet
      // The tail moved on while we looked, or the slot is garbage: look again (bounded above).
    }
  }

  /**
   * Sends one message, sleeping (without blocking the event loop) while every ring that holds
   * it is full: true once sent, false on timeout. The consumer's next free wakes every producer
   * process asleep here (each looks for room again; one of them gets the slot). Sends of one
   * handle made without awaiting the one before go out in the order they were made (read `bytes`
   * only when it goes: do not change it before the promise settles).
   */
  send(bytes: Uint8Array, options?: WaitOptions): Promise<boolean> {
    try {
      options = checkSleepOptions(options); // whether or not it waits; nothing sent or taken if aborted
      this.#checkMessage(bytes);
      if (this.#sends.idle && this.#offer(bytes)) return SENT;
    } catch (error) {
      return Promise.reject(error);
    }
    // It waits, behind the sends of this handle that wait already.
    const deadline = deadlineOf(options.timeoutMs);
    return this.#sends.join(deadline, options.signal, TIMED_OUT, () => this.#sendLater(bytes, options, deadline));
  }

  /** The rest of `send`, its turn come: sends `bytes`, sleeping while the queue is full. */
  async #sendLater(bytes: Uint8Array, options: WaitOptions, deadline: number): Promise<boolean> {
    for (;;) {
      if (this.trySend(bytes)) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      // Woken when the consumer frees slots: the waiter word names one sleeping producer
      // process, the bits every one of them.
      await this.#sleep(
        this.#spaceSeq,
        this.#spaceWaiter,
        () => this.#hasRoomFor(bytes),
        left,
        options,
        this.#markAsleep,
      );
    }
  }

  #hasRoomFor(bytes: Uint8Array): boolean {
    for (let r = 0; r < this.#count; r++) {
      if (bytes.length > this.#slotBytes[r]) continue;
      const p = this.#position(r, this.#tailWord[r]);
      const state = Atomics.load(this.#u32, this.#slot(r, p) + MQS_STATE / 4);
      if (state === p * 4 && Atomics.load(this.#u32, this.#slot(r, p) + MQS_WRITER / 4) === 0) return true;
    }
    return false;
  }

  /** Sleeps until `ready` holds, for at most `timeoutMs` (Infinity: no limit); `announce` as in `Watch`. */
  #sleep(
    seq: number,
    waiter: number,
    ready: () => boolean,
    timeoutMs: number,
    options: WaitOptions,
    announce?: () => void,
  ): Promise<number[]> {
    const watch: Watch = {
      chunk: this.#offset,
      seq,
      waiter,
      check: () => this.#check(),
      ready,
      peer: () => 0,
      announce,
    };
    return this.#mem.sleeper.sleep([watch], { timeoutMs, signal: options.signal, spinMicros: options.spinMicros });
  }

  // ---- the consumer ------------------------------------------------------------------------

  /**
   * The ring whose head the consumer delivers next, or -1 when none is ready. Skips (drops)
   * heads claimed by dead processes on the way.
   */
  #nextRing(): number {
    const u32 = this.#u32;
    for (let skips = 0; skips <= this.#capacity; skips++) {
      let stuck = -1;
      let unknown = -1;
      for (let r = 0; r < this.#count; r++) {
        let h = this.#heads[r];
        let s = this.#slot(r, h);
        let state = Atomics.load(u32, s + MQS_STATE / 4);
        for (let stepped = 0; this.#releasedAhead(r, h, state); stepped++) {
          // Released for the next lap already: a consumer read it but died before it published
          // its head. Step over it (at most a lap).
          if (stepped >= this.#slots[r]) this.#corrupt(`ring ${r} is released a whole lap ahead of its head`);
          h = this.#heads[r] = this.#next(r, h);
          s = this.#slot(r, h);
          state = Atomics.load(u32, s + MQS_STATE / 4);
        }
        if (state === h * 4 + 1) {
          if (this.#count === 1) return r;
          const next = this.#isNext(s);
          if (next === true) return r;
          if (next === undefined && unknown < 0) unknown = r;
        } else if (state === h * 4) {
          if (Atomics.load(u32, s + MQS_WRITER / 4) !== 0 && stuck < 0) stuck = r;
        } else {
          this.#corrupt(`ring ${r} slot of position ${h} has state ${state}`);
        }
      }
      if (stuck >= 0) {
        // A head being written may be the message another head waits behind: wait for it,
        // unless its writer died before publishing it (then it is dropped). Either way look again:
        // a writer that published and then died left a message to deliver.
        const verdict = this.#writerDead(stuck);
        if (verdict === WAIT) return -1;
        if (verdict === DROP) {
          this.#release(stuck, this.#heads[stuck]);
          this.#wakeProducers();
        }
        continue;
      }
      // Every head is ready or empty and none is its sender's next: this consumer began after
      // some senders' first messages were read (by an earlier consumer). Take up such a sender.
      return unknown;
    }
    this.#corrupt("every slot is claimed by a dead writer, again and again");
  }

  /**
   * With several rings: whether the ready head at slot `s` is its sender's next message (a
   * sender's first is number 1); undefined for a sender this consumer has not seen, whose
   * head is not number 1.
   */
  #isNext(s: number): boolean | undefined {
    const seq = Atomics.load(this.#u32, s + MQS_SENDER_SEQ / 4);
    const last = this.#delivered.get(Atomics.load(this.#u32, s + MQS_SENDER / 4));
    if (last !== undefined) return seq === ((last + 1) >>> 0);
    return seq === 1 ? true : undefined;
  }

  /**
   * What to do with ring `r`'s claimed, unpublished head: WAIT for its writer, DROP it (its
   * writer died before publishing), or look AGAIN (it changed meanwhile). Checks the writer's
   * life only once the head was stuck a while. The order matters: the slot is looked at again
   * after the writer is known dead, since a writer that published and then died (a producer
   * that sent its last message and exited) looks exactly like that between our two looks; once
   * it is dead its slot cannot change, so what we see then is final.
   */
  #writerDead(r: number): typeof WAIT | typeof DROP | typeof AGAIN {
    const h = this.#heads[r];
    const key = r * 2 ** 30 + h;
    const now = performance.now();
    if (this.#stuckAt !== key) {
      this.#stuckAt = key;
      this.#stuckSince = now;
      return WAIT;
    }
    if (now - this.#stuckSince < STUCK_CHECK_MS) return WAIT;
    this.#stuckSince = now; // next check after another STUCK_CHECK_MS
    const s = this.#slot(r, h);
    const writer = Atomics.load(this.#u32, s + MQS_WRITER / 4);
    if (writer === 0 || this.#mem.liveness.isAlive(writer)) return WAIT;
    if (
      Atomics.load(this.#u32, s + MQS_STATE / 4) !== h * 4 || Atomics.load(this.#u32, s + MQS_WRITER / 4) !== writer
    ) {
      return AGAIN; // published (or handed back) before the death
    }
    // Dead after claiming, before publishing: make sure the tail is past the slot, then drop it.
    Atomics.compareExchange(this.#u32, this.#tailWord[r], h, this.#next(r, h));
    return DROP;
  }

  /**
   * Frees the head slot of ring `r` (position `h`) for the lap after, and moves this consumer's
   * head on (published at the end of the call). The writer word is cleared with a plain store:
   * the state's `Atomics.store` after it orders it before any producer's view of the free slot.
   */
  #release(r: number, h: number): void {
    const s = this.#slot(r, h);
    this.#u32[s + MQS_WRITER / 4] = 0;
    Atomics.store(this.#u32, s + MQS_STATE / 4, ((h + this.#slots[r]) % this.#period[r]) * 4);
    this.#heads[r] = this.#next(r, h);
  }

  /** Whether the slot of position `h` (state `state`) was released for the lap after `h`. */
  #releasedAhead(r: number, h: number, state: number): boolean {
    const lap = ((h + this.#slots[r]) % this.#period[r]) * 4;
    return state === lap || state === lap + 1;
  }

  /** Whether a message is ready for the consumer (skipping dead producers' slots on the way). */
  #anyReady(): boolean {
    this.#loadHeads();
    try {
      return this.#nextRing() >= 0;
    } finally {
      this.#publishHeads();
    }
  }

  /** Length of ring `r`'s ready head at slot `s`, checked. */
  #length(r: number, s: number): number {
    const length = Atomics.load(this.#u32, s + MQS_LENGTH / 4);
    if (length > this.#slotBytes[r]) this.#corrupt(`a message of ${length} bytes in slots of ${this.#slotBytes[r]}`);
    return length;
  }

  /** Notes the delivery of the head at slot `s` (several rings) and frees it. */
  #consumed(r: number, s: number, h: number): void {
    if (this.#count > 1) {
      this.#delivered.set(Atomics.load(this.#u32, s + MQS_SENDER / 4), Atomics.load(this.#u32, s + MQS_SENDER_SEQ / 4));
    }
    this.#release(r, h);
  }

  #wakeProducers(): void {
    if (Atomics.load(this.#u32, this.#spaceWaiter) !== 0) {
      // Whoever armed the word last, then every producer process marked asleep.
      this.#mem.sleeper.notify(this.#spaceSeq, this.#spaceWaiter, this.#offset);
      this.#mem.sleeper.notifyMarked(this.#spaceSleepers, MQ_SPACE_SLEEPER_WORDS, this.#offset);
    }
  }

  /**
   * Copies the next message into `dst` and removes it: its length, or -1 when the queue is empty.
   * A `dst` shorter than the message is a RangeError, and the message stays.
   */
  tryReceive(dst: Uint8Array): number {
    this.#check();
    if (this.#batching) receiveInHandler();
    if (!(dst instanceof Uint8Array)) throw new TypeError("dst must be a Uint8Array");
    if (dst !== this.#dstOk) this.#checkOwn("dst", dst);
    this.#loadHeads();
    try {
      const r = this.#nextRing();
      if (r < 0) return -1;
      const h = this.#heads[r];
      const s = this.#slot(r, h);
      const length = this.#length(r, s);
      if (length > dst.length) throw new RangeError(`a message of ${length} bytes does not fit dst (${dst.length})`);
      const at = s * 4 + MQS_PAYLOAD;
      if (length !== 0) dst.set(this.#u8.subarray(at, at + length)); // an emptied dst takes an empty message
      this.#consumed(r, s, h);
      this.#wakeProducers();
      return length;
    } finally {
      this.#publishHeads();
    }
  }

  /**
   * Receives one message into `dst`, sleeping (without blocking the event loop) while the queue
   * is empty: its length, or -1 on timeout.
   */
  receive(dst: Uint8Array, options?: WaitOptions): Promise<number> {
    let n: number;
    try {
      options = checkSleepOptions(options); // whether or not it waits; nothing sent or taken if aborted
      n = this.#receives.idle ? this.tryReceive(dst) : -1;
    } catch (error) {
      return Promise.reject(error);
    }
    if (n >= 0) return Promise.resolve(n);
    // It waits, behind the receives of this handle that wait already.
    const deadline = deadlineOf(options.timeoutMs);
    return this.#receives.join(deadline, options.signal, NONE, () => this.#receiveLater(dst, options, deadline));
  }

  /** The rest of `receive`, its turn come: receives into `dst`, sleeping while the queue is empty. */
  async #receiveLater(dst: Uint8Array, options: WaitOptions, deadline: number): Promise<number> {
    for (;;) {
      const n = this.tryReceive(dst);
      if (n >= 0) return n;
      const left = deadline - performance.now();
      if (left <= 0) return -1;
      // A claimed head whose writer may be dead is re-looked at every STUCK_CHECK_MS.
      const slice = this.#stuckAt >= 0 ? Math.min(left, STUCK_CHECK_MS) : left;
      await this.#sleep(this.#dataSeq, this.#dataWaiter, () => this.#anyReady(), slice, options);
    }
  }

  /**
   * Hands up to `limit` waiting messages to `handler(bytes, length)`, in order, and frees their
   * slots after each call; `bytes` is a view of the message's slot, valid during the call only
   * (copy what you keep). The producers are told of the room once, for the whole batch.
   * Returns how many messages were handled. The handler may not receive from this queue (a
   * TypeError); one that frees the queue or deletes its segment ends the batch.
   */
  receiveBatch(handler: (bytes: Uint8Array, length: number) => void, limit = Infinity): number {
    this.#check();
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    if (this.#batching) receiveInHandler();
    let handled = 0;
    this.#loadHeads();
    this.#lentViews(); // once per batch
    this.#batching = true;
    try {
      while (handled < limit) {
        const r = this.#nextRing();
        if (r < 0) break;
        const h = this.#heads[r];
        const s = this.#slot(r, h);
        const length = this.#length(r, s);
        const i = h % this.#slots[r];
        handler(this.#views[r][i] ??= this.#newView(r, i), length);
        handled++;
        // A handler that freed the queue or deleted the segment ends the batch: the memory is no
        // longer this queue's.
        if (this.#gone()) return handled;
        this.#consumed(r, s, h);
      }
    } finally {
      this.#batching = false;
      if (!this.#gone()) {
        this.#publishHeads(); // one release of the batch's slots to the producers
        if (handled > 0) this.#wakeProducers();
      }
    }
    return handled;
  }

  /** Makes sure the kept views are over the current lent buffer (a caller may have detached one). */
  #lentViews(): void {
    const lent = this.#mem.lent();
    if (lent !== this.#viewsOf) {
      this.#viewsOf = lent;
      for (const views of this.#views) views.length = 0;
    }
  }

  /** A view of the payload of ring `r`'s slot `i`, over the lent buffer. */
  #newView(r: number, i: number): Uint8Array {
    const at = (this.#baseWord[r] + i * this.#strideWords[r]) * 4 + MQS_PAYLOAD;
    return new Uint8Array(this.#viewsOf!, at, this.#slotBytes[r]);
  }

  // ---- facts -------------------------------------------------------------------------------

  /** This queue's position in its segment: another process passes it to `segment.messageQueueAt`. */
  get offset(): number {
    return this.#offset;
  }

  /** Slots of all rings together. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The largest message, in bytes: the largest ring's slot size. */
  get slotSize(): number {
    return this.#maxMessage;
  }

  /** The rings, as allocated. */
  get rings(): RingSpec[] {
    return Array.from({ length: this.#count }, (_, r) => ({ slots: this.#slots[r], slotSize: this.#slotBytes[r] }));
  }

  /** Messages claimed or waiting, not yet received. */
  get size(): number {
    this.#check();
    let size = 0;
    for (let r = 0; r < this.#count; r++) {
      const tail = this.#position(r, this.#tailWord[r]);
      const head = this.#position(r, this.#headWord[r]);
      const used = (tail - head + this.#period[r]) % this.#period[r];
      if (used > this.#slots[r]) this.#corrupt(`ring ${r} holds ${used} of ${this.#slots[r]} slots`);
      size += used;
    }
    return size;
  }

  /** @ignore @internal The allocation number this handle belongs to. */
  get allocationSeq(): number {
    return this.#seq;
  }

  /** Whether the queue is still allocated and usable through this handle. */
  get isLive(): boolean {
    return !this.#gone() && Atomics.load(this.#u32, this.#seqWord) === this.#seq;
  }

  /**
   * @ignore @internal For wrap tests: places every ring's head and tail at `position` (modulo its
   * period) and this handle's sender sequence at `senderSeq`. Only on an empty, quiet queue.
   */
  initPositions(position: number, senderSeq = 0): void {
    this.#check();
    if (this.size !== 0) throw new RangeError("initPositions needs an empty queue");
    for (let r = 0; r < this.#count; r++) {
      const p = position % this.#period[r];
      for (let k = 0; k < this.#slots[r]; k++) {
        const q = (p + k) % this.#period[r];
        const s = this.#slot(r, q);
        Atomics.store(this.#u32, s + MQS_WRITER / 4, 0);
        Atomics.store(this.#u32, s + MQS_CLAIM_POS / 4, 0);
        Atomics.store(this.#u32, s + MQS_STATE / 4, q * 4);
      }
      Atomics.store(this.#u32, this.#tailWord[r], p);
      Atomics.store(this.#u32, this.#headWord[r], p);
    }
    this.#sent = senderSeq >>> 0;
  }

  /** @ignore @internal Whether this object reads `mem` (the segment it came from). */
  isIn(mem: MessageQueueMemory): boolean {
    return this.#mem === mem;
  }

  /** @ignore @internal Called by the segment when the queue is freed through this handle. */
  markFreed(): void {
    this.#freed = true;
  }

  /** A one-line description. */
  toString(): string {
    return describeLive(this, () => this.#describe(), `message queue @${this.#offset} (gone)`);
  }

  #describe(): string {
    const rings = this.rings.map((r) => `${r.slots}x${r.slotSize} B`).join(", ");
    return `message queue @${this.#offset}: ${this.size} of ${this.#capacity} messages waiting, rings ${rings}`;
  }
}
