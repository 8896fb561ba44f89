/**
 * One end of a connection made by `sm.listen` / `sm.connect`: a segment of its own (a sealed
 * memfd) holding two fifos, `rx` (the peer writes, we read) and `tx` (we write, the peer reads),
 * plus its end of a socketpair whose other end the peer holds (the kernel closes that when the
 * peer closes the connection or dies; this side watches for it). Bytes go through `readable` /
 * `writable`, framed messages through `send` / `receive` / `messages()` (a message is a u32
 * length and its bytes, written into the fifo in one piece, so a reader never sees half of one).
 * Use one or the other on a connection, not both.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import type { Fifo } from "../fifo/fifo.ts";
import type { Segment } from "../segment/segment.ts";
import { readableOf, writableOf } from "../fifo/fifo_streams.ts";
import { deadlineOf, Line } from "../wake/queued.ts";
import { checkSleepOptions } from "../wake/sleeper.ts";

/** Who is at the other end, as the kernel told it (SO_PEERCRED) when the connection was made. */
export interface PeerCredentials {
  /** The peer's process id (at connect time). */
  readonly pid: number;
  /** The peer's effective user id. */
  readonly uid: number;
}

/** Options of `send` and `receive`. */
export interface MessageOptions {
  /**
   * Give up after this many milliseconds: `send` then rejects with "timeout", `receive` too.
   * Default: no limit; 2^31 or more (24.8 days), or `Infinity`: no limit.
   */
  timeoutMs?: number;
  /** Cancels the call while it waits; one already aborted rejects it at once, nothing sent or taken. */
  signal?: AbortSignal;
}

/** @ignore @internal What a connection is made of. */
export interface ConnectionParts {
  readonly segment: Segment;
  readonly rx: Fifo;
  readonly tx: Fifo;
  readonly peer: PeerCredentials;
  /** Starts watching the peer's process; returns the function that stops it. */
  readonly watch: (onGone: () => void) => () => void;
  /** Releases the segment and the socket. */
  readonly release: () => void;
}

const HEADER = 4;
/** What `send` returns for a message that fitted at once, and `receive` at the end. */
const SENT: Promise<void> = Promise.resolve();
const NO_MESSAGE: Promise<null> = Promise.resolve(null);

/** How often a connection whose peer died looks whether its reader took the rest of rx. */
const DRAIN_CHECK_MS = 20;

/** One end of a connection. */
export class Connection {
  /** The peer's pid and uid, from the kernel. */
  readonly peer: PeerCredentials;
  readonly #segment: Segment;
  readonly #rx: Fifo;
  readonly #tx: Fifo;
  readonly #release: () => void;
  readonly #stopWatch: () => void;
  /** Aborted when the peer's process dies or it closes (the public `signal`): sends and waits on tx end. */
  readonly #gone = new AbortController();
  /** Aborted once the peer is dead and rx is drained (or at close): reads of rx end. */
  readonly #rxEnd = new AbortController();
  #closed = false;
  #frame = new Uint8Array(256);
  #frameView = new DataView(this.#frame.buffer);
  /**
   * Sends and receives that wait, each behind the one before: a later call joins the line instead
   * of taking a fast path, so that messages go out, and are handed to the calls, in call order.
   */
  readonly #sends = new Line();
  readonly #receives = new Line();
  #header = new Uint8Array(HEADER);
  readonly #headerView = new DataView(this.#header.buffer);
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  /** @ignore @internal Made by `sm.listen` and `sm.connect`. */
  constructor(parts: ConnectionParts) {
    this.peer = Object.freeze({ pid: parts.peer.pid, uid: parts.peer.uid });
    this.#segment = parts.segment;
    this.#rx = parts.rx;
    this.#tx = parts.tx;
    this.#release = parts.release;
    this.#stopWatch = parts.watch(() => this.#peerLeft());
  }

  /** The connection's segment (in this process's SegmentMain pool while the connection is open). */
  get segment(): Segment {
    return this.#segment;
  }

  /** The fifo the peer writes and this side reads. */
  get rx(): Fifo {
    return this.#rx;
  }

  /** The fifo this side writes and the peer reads. */
  get tx(): Fifo {
    return this.#tx;
  }

  /**
   * Aborted with `SegmentError` "peer-gone" when the peer's process dies or the peer closes the
   * connection (the kernel tells: each side holds one end of a socketpair). Pass it (alone or
   * through `AbortSignal.any`) to waits on `tx` (and on `rx`, if you read it directly). What the
   * peer sent before it died or closed is not lost: `receive`, `messages` and `readable` deliver
   * it, then end with "peer-gone" after a death, as closed after a close; after a death the
   * connection's segment is released once that is read, else at `close()`.
   */
  get signal(): AbortSignal {
    return this.#gone.signal;
  }

  /** True once `close()` ran or the peer's process died. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The peer's end of the connection's socketpair closed: it closed the connection (its tx, our
   * rx, is closed then: it closes the fifo before it lets go of the pair) or its process died.
   * Either way nobody reads tx or writes rx any more: sends end; reads take what is in rx, then
   * end as the peer left it (null after a close, "aborted" after an abort, else "peer-gone").
   */
  #peerLeft(): void {
    if (this.#closed || this.#gone.signal.aborted) return;
    let closed = false;
    try {
      closed = this.#rx.isClosed;
    } catch { /* unusable: as if it died */ }
    const pid = this.peer.pid;
    this.#gone.abort(
      new SegmentError(
        "peer-gone",
        closed
          ? `the process at the other end of the connection (pid ${pid}) closed it`
          : `the process at the other end of the connection (pid ${pid}) died`,
      ),
    );
    if (!closed) this.#whenDrained(); // else rx's reads end as the peer closed it, as they always did
  }

  /**
   * After the peer's death nobody writes rx any more: once it is empty (now, or when the reader
   * took the rest), its reads end with "peer-gone" and the segment is released.
   */
  #whenDrained(): void {
    if (this.#closed) return;
    let left = 0;
    try {
      left = this.#rx.maxDequeue;
    } catch { /* unusable: nothing more to read */ }
    if (left > 0) {
      const timer = setTimeout(() => this.#whenDrained(), DRAIN_CHECK_MS);
      (timer as { unref?: () => void }).unref?.();
      return;
    }
    this.#rxEnd.abort(this.#gone.signal.reason);
    this.#shutDown();
  }

  /** Before a send or a use of tx: the peer must live and the connection be open. */
  #check(): void {
    if (this.#gone.signal.aborted) throw this.#gone.signal.reason;
    if (this.#closed) throw new SegmentError("deleted", "the connection is closed");
  }

  /** Before a read of rx: what the dead peer sent may still be read. */
  #checkRead(): void {
    if (this.#rxEnd.signal.aborted) throw this.#rxEnd.signal.reason;
    if (this.#closed) throw new SegmentError("deleted", "the connection is closed");
  }

  /** A signal joined with the caller's. */
  #signal(own: AbortSignal, signal: AbortSignal | undefined): AbortSignal {
    return signal ? AbortSignal.any([signal, own]) : own;
  }

  /**
   * Sends one message (at most `tx.size - 4` bytes), waiting for room; rejects with "peer-gone"
   * if the peer died or closed the connection. The bytes are copied before it returns. Sends
   * made without awaiting the one before go out whole, in the order made.
   */
  send(bytes: Uint8Array, options?: MessageOptions): Promise<void> {
    // Not an async function: a message that fits now costs no second promise and no resumption.
    let frame: Uint8Array;
    try {
      if (options !== undefined) checkSleepOptions(options); // whether or not it waits; nothing done if aborted
      this.#check();
      if (!(bytes instanceof Uint8Array)) throw new TypeError("send takes a Uint8Array");
      const length = HEADER + bytes.length;
      if (length > this.#tx.size) {
        throw new RangeError(`a message of ${bytes.length} bytes does not fit a fifo of ${this.#tx.size}`);
      }
      if (this.#frame.length < length) {
        this.#frame = new Uint8Array(Math.max(length, this.#frame.length * 2));
        this.#frameView = new DataView(this.#frame.buffer);
      }
      frame = this.#frame.subarray(0, length);
      this.#frameView.setUint32(0, bytes.length, true);
      if (bytes.length !== 0) frame.set(bytes, HEADER); // a transferred buffer's view is empty
      if (this.#sends.idle && this.#tx.enqueueExact(frame)) return SENT;
    } catch (error) {
      return Promise.reject(error);
    }
    // It waits, with a copy of its frame (the next send reuses the buffer), behind those that wait.
    const own = frame.slice();
    const deadline = deadlineOf(options?.timeoutMs);
    const signal = this.#signal(this.#gone.signal, options?.signal);
    const timedOut = () =>
      new SegmentError("timeout", `no room for a message of ${own.length - HEADER} bytes in ${options?.timeoutMs} ms`);
    return this.#sends.join(deadline, signal, () => {
      throw timedOut();
    }, () => this.#sendLater(own, deadline, signal, timedOut));
  }

  /** The rest of `send`, its turn come: waits for room for `frame` (the message with its header). */
  async #sendLater(frame: Uint8Array, deadline: number, signal: AbortSignal, timedOut: () => SegmentError) {
    const length = frame.length;
    this.#check();
    while (!this.#tx.enqueueExact(frame)) {
      const left = deadline - performance.now(); // Infinity without a deadline: a wait with no timer
      if (left <= 0 || !(await this.#tx.waitForSpace(length, { signal, timeoutMs: left }))) throw timedOut();
      this.#check();
    }
  }

  /**
   * Receives one message, sleeping until it comes: its bytes, or null once the peer closed the
   * connection and every message was read. Rejects with "peer-gone" if the peer died, "aborted"
   * if it aborted its side, "timeout" after `timeoutMs`. Receives made without awaiting the one
   * before are handed the messages in the order made.
   */
  receive(options?: MessageOptions): Promise<Uint8Array | null> {
    // Not an async function: a message that is there costs no second promise and no resumption.
    try {
      if (options !== undefined) checkSleepOptions(options); // whether or not it waits; nothing done if aborted
      if (this.#receives.idle) {
        this.#checkRead();
        const closed = this.#rx.isClosed; // read before emptiness: the peer closes after its last write
        const have = this.#rx.maxDequeue;
        if (have > 0) return Promise.resolve(this.#take(have));
        if (closed && !this.#rx.isAborted) return NO_MESSAGE;
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // It waits, behind those that wait.
    const deadline = deadlineOf(options?.timeoutMs);
    const signal = options?.signal;
    const timedOut = () => new SegmentError("timeout", `no message in ${options?.timeoutMs} ms`);
    return this.#receives.join(deadline, signal, () => {
      throw timedOut();
    }, () => this.#receiveLater(deadline, signal, timedOut));
  }

  /** The rest of `receive`, its turn come: looks again, and sleeps until a message, the end or the timeout. */
  async #receiveLater(deadline: number, signal: AbortSignal | undefined, timedOut: () => SegmentError) {
    this.#checkRead();
    // No listener on our own signal for each wait: the end of rx (the peer died and rx is read,
    // or close()) deletes the segment, which ends a pending wait at once; its error is then told
    // as #checkRead tells it.
    for (;;) {
      const closed = this.#rx.isClosed; // read before emptiness: the peer closes after its last write
      const have = this.#rx.maxDequeue;
      if (have > 0) return this.#take(have);
      if (closed) {
        if (this.#rx.isAborted) throw new SegmentError("aborted", "the peer aborted the connection");
        return null;
      }
      if (this.#gone.signal.aborted) {
        this.#whenDrained(); // the peer is dead and rx empty: nothing more can come
        this.#checkRead();
      }
      const left = deadline - performance.now(); // Infinity without a deadline: a wait with no timer
      let ready: boolean;
      try {
        ready = left > 0 && await this.#rx.waitForData({ signal, timeoutMs: left });
      } catch (error) {
        this.#checkRead();
        throw error;
      }
      if (!ready) throw timedOut();
      this.#checkRead();
    }
  }

  /** Takes the message at the head of rx, of which `have` bytes are readable (a sender writes whole frames). */
  #take(have: number): Uint8Array {
    if (have < HEADER || this.#rx.peek(0, this.#header) !== HEADER) {
      throw new SegmentError("corrupt", `${have} bytes in the fifo: less than a message header`);
    }
    const length = this.#headerView.getUint32(0, true);
    if (length > this.#rx.size - HEADER || HEADER + length > have) {
      throw new SegmentError("corrupt", `a message header says ${length} bytes; ${have - HEADER} follow`);
    }
    // One move of the head for header and payload, into an array of our own (no alias check).
    const message = this.#rx.dequeueFresh(HEADER, length);
    if (message === null) {
      throw new SegmentError("corrupt", `the fifo's tail went back under a message of ${length} bytes`);
    }
    return message;
  }

  /** Every message until the peer closes, as they come. */
  async *messages(options: { signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const message = await this.receive(options);
      if (message === null) return;
      yield message;
    }
  }

  /** The bytes the peer writes, as a stream; ends when it closes, errors if it dies or aborts. */
  get readable(): ReadableStream<Uint8Array> {
    this.#checkRead();
    return (this.#readable ??= readableOf(this.#rx, this.#rxEnd.signal));
  }

  /** A stream into the peer; closing it ends the peer's `readable`, aborting it errors it. */
  get writable(): WritableStream<Uint8Array> {
    this.#check();
    return (this.#writable ??= writableOf(this.#tx, this.#gone.signal));
  }

  /**
   * Ends this side: the peer reads what was sent, then sees the end (`receive` gives null, its
   * `readable` ends). This side's mapping and socket are released at once. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    try {
      this.#tx.close();
    } catch { /* the segment is unusable already: nothing to tell the peer */ }
    this.#shutDown();
  }

  #shutDown(): void {
    this.#closed = true;
    this.#stopWatch();
    this.#release();
  }

  /** `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
