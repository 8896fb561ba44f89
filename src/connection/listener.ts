/**
 * Connections by name: `sm.listen(name)` and `sm.connect(name)`. A listener is a SOCK_SEQPACKET
 * socket bound to the name (abstract when it has no "/", else a path), plus a bell (an abstract
 * stream socket watched by the event loop) that clients ring after their HELLO, so that the
 * listener accepts without polling hard and without blocking. It checks the client's uid
 * (SO_PEERCRED), makes a sealed memfd segment with two fifos, and answers with the segment's fd
 * and one end of a socketpair (SCM_RIGHTS) and the fifos' offsets. Each side keeps its end of the
 * pair open while its connection is open, and the kernel closes it when the process dies: the
 * other side reads the end of the stream, which no word a peer writes can forge or hide.
 * Messages: "Connections" in `layout.ts`.
 *
 * @module
 */

import type { Doorbell } from "../../ffi/doorbell.ts";
import { watchListener, watchPeerEnd } from "../../ffi/doorbell.ts";
import { type Os, OsError } from "../../ffi/os.ts";
import { SegmentError } from "../errors.ts";
import {
  ANSWER_ACCEPTED,
  ANSWER_BAD_HELLO,
  ANSWER_NO_ROOM,
  ANSWER_REFUSED,
  bellName,
  chunkBytes,
  EVENTS_BYTES,
  FIFO_AREA_START,
  FIFO_HEADER_SIZE,
  MAX_SEGMENT_SIZE,
  PAGE_SIZE,
} from "../layout.ts";
import type { Segment } from "../segment/segment.ts";
import type { Fifo } from "../fifo/fifo.ts";
import { classOf } from "../segment/allocator.ts";
import type { WakeHub } from "../wake/wake_hub.ts";
import { checkSignal, checkTimeout } from "../wake/sleeper.ts";
import { S_IFMT, S_IFSOCK, SOCK_STREAM } from "../../ffi/symbols.ts";
import { Connection, type PeerCredentials } from "./connection.ts";
import { decodeAnswer, decodeHello, encodeAnswer, encodeHello, type Hello } from "./handshake.ts";

/** What connections need of their SegmentMain. */
export interface ConnectionHost {
  readonly os: Os;
  /** The SegmentMain's wake-up machinery (doorbell, rings, peer watches). */
  hub(): WakeHub;
  /** A new sealed memfd segment in the pool. */
  createMemfd(name: string, size: number): Segment;
  /** Attaches a memfd another process sent (the fd stays the caller's). */
  attachMemfd(fd: number, allowForeign: boolean): Segment;
  /** Deletes a segment of the pool. */
  delete(segment: Segment): void;
  /**
   * Closes `resource` when the SegmentMain is disposed; returns the function that forgets it, for
   * when it closes first. Throws `SegmentError` "deleted" once the SegmentMain is disposed.
   */
  hold(resource: { close(): void }): () => void;
  /** Aborted, with `SegmentError` "deleted" as its reason, when the SegmentMain is disposed. */
  readonly disposed: AbortSignal;
}

/** Options of `sm.listen`. */
export interface ListenOptions {
  /** Bytes of each of a connection's two fifos. Default 64 KiB. */
  fifoSize?: number;
  /** Bytes of a connection's segment. Default: what the two fifos need. */
  segmentSize?: number;
  /** Users besides our own whose processes may connect. Default: none. */
  allowUids?: readonly number[];
  /**
   * Called with each refused or failed handshake, and why, from the listener's own callbacks: an
   * exception it throws is not caught, like one from any event listener.
   */
  onRefused?: (refusal: Refusal) => void;
  /** How long a client may take between connecting and its HELLO. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /**
   * Connections in the making or made and not yet accepted, at most. Default 128, or a quarter
   * of the process's fd limit where that is less (anyone may connect to a name). Beyond it the
   * listener takes no more clients until the program accepts one: the others wait in the
   * kernel's queue (their `connect` waits, up to its timeout), and a flood of clients costs the
   * listener's process at most this many fds and segments.
   */
  backlog?: number;
}

/** A handshake the listener refused, and why. */
export interface Refusal {
  /** The client's pid and uid, when the kernel told them. */
  readonly peer?: PeerCredentials;
  /** What was wrong. */
  readonly reason: string;
}

/** Options of `sm.connect`. */
export interface ConnectOptions {
  /** How long to wait for a listener to appear and answer. Default 10000 ms. */
  timeoutMs?: number;
  /** Users besides our own whose listener we accept. Default: none. */
  allowUids?: readonly number[];
  /** Cancels the wait. */
  signal?: AbortSignal;
}

const POLL_MS = 100;
const DEFAULT_BACKLOG = 128;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function checkName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0 || name.includes("\0")) {
    throw new TypeError(`a connection name must be a non-empty string without NUL, got ${String(name)}`);
  }
  if (new TextEncoder().encode(bellName(name)).length > 105) throw new RangeError(`connection name too long: ${name}`);
  return name;
}

function checkUids(uids: unknown): number[] {
  if (uids === undefined) return [];
  if (!Array.isArray(uids) || !uids.every((u) => Number.isInteger(u) && u >= 0 && u <= 0xffff_ffff)) {
    throw new TypeError("allowUids must be an array of uids");
  }
  return [...uids];
}

/** The segment size two fifos of `fifoSize` need, with the event rings of both processes. */
function segmentBytes(fifoSize: number): number {
  const bytes = FIFO_AREA_START + 2 * chunkBytes(classOf(fifoSize)) + 4 * (FIFO_HEADER_SIZE + PAGE_SIZE) +
    EVENTS_BYTES;
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

let serial = 0;

/** A name others connect to. Iterate it for connections; close it (or `using`) to stop listening. */
export class Listener implements AsyncIterable<Connection> {
  /** The name it listens on. */
  readonly name: string;
  readonly #host: ConnectionHost;
  readonly #os: Os;
  readonly #fd: number;
  readonly #bell: Doorbell;
  readonly #fifoSize: number;
  readonly #segmentSize: number;
  readonly #uids: number[];
  readonly #onRefused: ((refusal: Refusal) => void) | undefined;
  readonly #handshakeMs: number;
  readonly #backlog: number;
  readonly #poll: ReturnType<typeof setInterval>;
  readonly #handshaking = new Map<number, number>(); // fd -> deadline
  readonly #ready: Connection[] = [];
  readonly #takers: ((connection: Connection | null) => void)[] = [];
  readonly #buffer = new Uint8Array(4096);
  #closed = false;
  readonly #forget: () => void;
  /** Refused or failed handshakes so far. */
  refused = 0;

  /** @ignore @internal Use `sm.listen`. */
  constructor(
    host: ConnectionHost,
    name: string,
    fd: number,
    bell: Doorbell,
    options: ListenOptions,
  ) {
    this.#host = host;
    this.#os = host.os;
    this.name = name;
    this.#fd = fd;
    this.#bell = bell;
    this.#fifoSize = options.fifoSize ?? 64 * 1024;
    this.#segmentSize = options.segmentSize ?? segmentBytes(this.#fifoSize);
    this.#uids = checkUids(options.allowUids);
    this.#onRefused = options.onRefused;
    this.#handshakeMs = options.handshakeTimeoutMs ?? 5000;
    this.#backlog = options.backlog ?? Math.min(DEFAULT_BACKLOG, host.hub().admission().limit);
    this.#forget = host.hold(this); // first: it throws for a disposed SegmentMain
    this.#poll = setInterval(() => {
      this.#bell.recover(); // connections its listener left waiting after running out of fds
      this.pump();
    }, POLL_MS);
    (this.#poll as { unref?: () => void }).unref?.();
  }

  /** @ignore @internal Accepts what waits and moves every handshake on; runs on a bell ring and every 100 ms. */
  pump(): void {
    if (this.#closed) return;
    while (this.#handshaking.size + this.#ready.length < this.#backlog) {
      let fd: number;
      try {
        fd = this.#os.accept(this.#fd);
      } catch {
        break; // EMFILE and the like: try again at the next ring or poll
      }
      if (fd < 0) break;
      this.#handshaking.set(fd, performance.now() + this.#handshakeMs);
    }
    for (const [fd, deadline] of this.#handshaking) this.#step(fd, deadline);
  }

  /** One look at a client's handshake. */
  #step(fd: number, deadline: number): void {
    let packet: ReturnType<Os["recvPacket"]>;
    try {
      packet = this.#os.recvPacket(fd, this.#buffer);
    } catch (error) {
      return this.#drop(fd, undefined, `reading its hello failed: ${error}`);
    }
    if (packet === null) {
      if (performance.now() > deadline) this.#drop(fd, undefined, "no hello in time");
      return;
    }
    for (const passed of packet.fds) this.#os.close(passed); // clients send no fds
    if (packet.length === 0) return this.#drop(fd, undefined, "closed before its hello");
    let peer: PeerCredentials | undefined;
    try {
      peer = this.#os.peerCredentials(fd);
    } catch (error) {
      return this.#drop(fd, undefined, `no credentials: ${error}`);
    }
    let hello: Hello;
    try {
      if (packet.truncated) throw new SegmentError("handshake", "hello: truncated");
      hello = decodeHello(this.#buffer, packet.length);
    } catch (error) {
      this.#answer(fd, ANSWER_BAD_HELLO, String((error as Error).message));
      return this.#drop(fd, peer, (error as Error).message);
    }
    if (peer.uid !== this.#os.geteuid() && !this.#uids.includes(peer.uid)) {
      const reason = `uid ${peer.uid} may not connect to "${this.name}" (allowUids)`;
      this.#answer(fd, ANSWER_REFUSED, reason);
      return this.#drop(fd, peer, reason);
    }
    this.#handshaking.delete(fd);
    this.#open(fd, peer, hello);
  }

  /**
   * Makes the connection's segment and fifos and a socketpair, answers with the segment's fd and
   * one end of the pair, and queues the connection, which watches the other end: the kernel
   * closes the client's end when the client closes the connection or dies.
   */
  #open(fd: number, peer: PeerCredentials, hello: Hello): void {
    let segment: Segment | undefined;
    let life: [number, number] | undefined;
    try {
      segment = this.#host.createMemfd(
        `conn-${this.name.replaceAll("/", "_").slice(-200)}-${++serial}`,
        this.#segmentSize,
      );
      const rx = segment.allocFifo(this.#fifoSize, "rx"); // the client writes, we read
      const tx = segment.allocFifo(this.#fifoSize, "tx");
      if (!rx || !tx) {
        this.#answer(fd, ANSWER_NO_ROOM, `a segment of ${this.#segmentSize} bytes has no room for two fifos`);
        throw new Error("no room for the fifos");
      }
      const answer = encodeAnswer({
        status: ANSWER_ACCEPTED,
        segmentSize: segment.size,
        rx: tx.offset,
        tx: rx.offset,
        reason: "",
      });
      life = this.#os.socketPair();
      let sent: number;
      try {
        sent = this.#os.sendPacket(fd, answer, [segment.fd!, life[1]]);
      } finally {
        this.#os.close(life[1]); // the client's end is the client's now (or nobody's)
      }
      if (sent !== answer.length) throw new Error("the answer did not fit");
      this.#host.hub().ring(hello.doorbell);
      const end = life[0];
      life = undefined; // the connection's watch owns our end from here
      const connection = held(this.#host, segment, rx, tx, peer, (onGone) => watchPeerEnd(this.#os, end, onGone));
      this.#os.close(fd); // the handshake is over; the pair tells of the client's end
      const taker = this.#takers.shift();
      if (taker) taker(connection);
      else this.#ready.push(connection);
    } catch (error) {
      if (life) this.#os.close(life[0]);
      if (segment && !segment.deleted) this.#host.delete(segment);
      this.#drop(fd, peer, `could not open the connection: ${(error as Error).message}`);
    }
  }

  #answer(fd: number, status: number, reason: string): void {
    try {
      this.#os.sendPacket(fd, encodeAnswer({ status, segmentSize: 0, rx: 0, tx: 0, reason }));
    } catch { /* the client is gone: nothing to tell */ }
  }

  #drop(fd: number, peer: PeerCredentials | undefined, reason: string): void {
    this.#handshaking.delete(fd);
    this.#os.close(fd);
    this.refused++;
    this.#onRefused?.({ ...(peer ? { peer: { pid: peer.pid, uid: peer.uid } } : {}), reason });
  }

  /** The next connection; null once the listener is closed. */
  accept(): Promise<Connection | null> {
    const ready = this.#ready.shift();
    if (ready) {
      if (this.#ready.length + this.#handshaking.size + 1 >= this.#backlog) queueMicrotask(() => this.pump()); // room again
      return Promise.resolve(ready);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** Each connection as it is made, until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    for (;;) {
      const connection = await this.accept();
      if (connection === null) return;
      yield connection;
    }
  }

  /**
   * Stops listening: the name is free again (a path is unlinked), handshakes in progress are
   * dropped, and iterations end. Connections already made stay open. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#forget();
    clearInterval(this.#poll);
    this.#bell.close();
    for (const fd of this.#handshaking.keys()) this.#os.close(fd);
    this.#handshaking.clear();
    this.#os.close(this.#fd);
    if (this.name.includes("/")) {
      try {
        this.#os.unlink(this.name);
      } catch { /* removed by someone else */ }
    }
    for (const connection of this.#ready.splice(0)) connection.close();
    for (const taker of this.#takers.splice(0)) taker(null);
  }

  /** `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Binds `name` (replacing a path that a dead listener left), its bell, and returns the listener. */
export async function listen(host: ConnectionHost, name: string, options: ListenOptions = {}): Promise<Listener> {
  checkName(name);
  if (typeof options !== "object" || options === null) throw new TypeError("listen options must be an object");
  classOf(options.fifoSize ?? 64 * 1024);
  checkUids(options.allowUids);
  const { segmentSize, handshakeTimeoutMs, onRefused, backlog } = options;
  if (segmentSize !== undefined) {
    const least = segmentBytes(options.fifoSize ?? 64 * 1024);
    if (typeof segmentSize !== "number" || !Number.isInteger(segmentSize)) {
      throw new TypeError(`segmentSize must be a whole number of bytes, got ${String(segmentSize)}`);
    }
    if (segmentSize < least || segmentSize > MAX_SEGMENT_SIZE) {
      throw new RangeError(`segmentSize must be from ${least} (two fifos of fifoSize) to ${MAX_SEGMENT_SIZE}`);
    }
  }
  if (handshakeTimeoutMs !== undefined) checkTimeout(handshakeTimeoutMs);
  if (onRefused !== undefined && typeof onRefused !== "function") throw new TypeError("onRefused must be a function");
  if (backlog !== undefined && (typeof backlog !== "number" || !Number.isInteger(backlog) || backlog < 1)) {
    throw new TypeError(`backlog must be a whole number from 1, got ${String(backlog)}`);
  }
  const os = host.os;
  let fd: number;
  try {
    fd = os.listenUnix(name, 128, "seqpacket");
  } catch (error) {
    if (!(error instanceof OsError) || error.code !== "EADDRINUSE") throw error;
    if (!name.includes("/") || listening(os, name)) {
      throw new SegmentError("in-use", `a live listener holds "${name}"`);
    }
    os.unlink(name); // a socket file a dead listener left behind
    fd = os.listenUnix(name, 128, "seqpacket");
  }
  let bell: Doorbell | undefined;
  try {
    const bellFd = os.listenUnix(bellName(name), 128, "stream");
    const made: { listener?: Listener } = {};
    bell = await watchListener(bellFd, () => made.listener?.pump(), { os, admission: host.hub().admission() });
    made.listener = new Listener(host, name, fd, bell, options);
    return made.listener;
  } catch (error) {
    bell?.close();
    os.close(fd);
    if (name.includes("/")) os.unlink(name);
    if (error instanceof OsError && error.code === "EADDRINUSE") {
      throw new SegmentError("in-use", `a live listener holds the bell of "${name}"`);
    }
    throw error;
  }
}

/**
 * A connection over `segment`, held by the SegmentMain (closed when it is disposed) until it
 * closes; its release deletes the segment. A SegmentMain disposed meanwhile closes it at once
 * (its peer sees the end) and throws "deleted".
 */
function held(
  host: ConnectionHost,
  segment: Segment,
  rx: Fifo,
  tx: Fifo,
  peer: PeerCredentials,
  watch: (onGone: () => void) => () => void,
): Connection {
  let forget = () => {};
  const connection = new Connection({
    segment,
    rx,
    tx,
    peer,
    watch,
    release: () => {
      forget();
      host.delete(segment);
    },
  });
  try {
    forget = host.hold(connection);
  } catch (error) {
    connection.close();
    throw error;
  }
  return connection;
}

/** Whether a live listener answers at `name`. */
function listening(os: Os, name: string): boolean {
  try {
    os.close(os.connectUnix(name, "seqpacket"));
    return true;
  } catch (error) {
    if (error instanceof OsError && error.code === "EAGAIN") return true; // alive, its backlog full
    return false;
  }
}

/**
 * Connects to the listener at `name`, waiting (asleep) for it to appear, and returns the
 * connection once the listener answered.
 */
export async function connect(host: ConnectionHost, name: string, options: ConnectOptions = {}): Promise<Connection> {
  checkName(name);
  if (typeof options !== "object" || options === null) throw new TypeError("connect options must be an object");
  checkTimeout(options.timeoutMs);
  checkSignal(options.signal);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const uids = checkUids(options.allowUids);
  // The caller's signal, or the SegmentMain's dispose ("deleted"), ends the connect wherever it waits.
  // (Not one `AbortSignal.any` of the two: Node kept some 100 bytes of each such signal for long.)
  const { signal } = options;
  const { disposed } = host;
  const stopIfAborted = () => {
    signal?.throwIfAborted();
    disposed.throwIfAborted();
  };
  stopIfAborted();
  const os = host.os;
  const deadline = performance.now() + timeoutMs;
  const late = () => new SegmentError("timeout", `no listener answered at "${name}" in ${timeoutMs} ms`);
  // 1. The listener's socket, once it exists.
  let fd = -1;
  for (let pause = 2; fd < 0; pause = Math.min(pause * 2, 50)) {
    try {
      fd = os.connectUnix(name, "seqpacket");
    } catch (error) {
      const code = error instanceof OsError ? error.code : "";
      if (code !== "ECONNREFUSED" && code !== "ENOENT" && code !== "EAGAIN") throw error;
      const left = deadline - performance.now();
      if (left <= 0) throw late();
      await sleep(Math.min(pause, left));
      stopIfAborted();
    }
  }
  const fds: number[] = [];
  try {
    // 2. HELLO, then a ring of the bell so that the listener looks now.
    const hub = host.hub();
    const ours = (await hub.doorbell()).key;
    if (os.sendPacket(fd, encodeHello({ doorbell: ours })) < 0) {
      throw new SegmentError("handshake", "the hello did not fit");
    }
    hub.ringBell(bellName(name)); // when it cannot, the listener's poll finds the HELLO
    // 3. The answer: looked for when our doorbell rings, and every 20 ms.
    const buffer = new Uint8Array(4096);
    const packet = await new Promise<{ length: number; fds: number[]; truncated: boolean }>((resolve, reject) => {
      let stop = () => {};
      const look = () => {
        try {
          stopIfAborted();
          let got: ReturnType<Os["recvPacket"]>;
          try {
            got = os.recvPacket(fd, buffer);
          } catch (error) {
            // A listener that closed with our hello unread resets the connection: no answer either.
            if (!(error instanceof OsError) || error.code !== "ECONNRESET") throw error;
            got = { length: 0, fds: [], truncated: false };
          }
          if (got !== null) {
            stop();
            resolve(got);
          } else if (performance.now() > deadline) {
            stop();
            reject(late());
          }
        } catch (error) {
          stop();
          reject(error);
        }
      };
      const off = hub.onRing(look);
      const timer = setInterval(look, 20);
      signal?.addEventListener("abort", look);
      disposed.addEventListener("abort", look);
      stop = () => {
        off();
        clearInterval(timer);
        signal?.removeEventListener("abort", look);
        disposed.removeEventListener("abort", look);
      };
      look();
    });
    fds.push(...packet.fds);
    if (packet.length === 0) throw new SegmentError("handshake", `the listener at "${name}" closed without an answer`);
    if (packet.truncated) throw new SegmentError("handshake", "the answer was cut short");
    const answer = decodeAnswer(buffer, packet.length);
    if (answer.status !== ANSWER_ACCEPTED) throw new SegmentError("refused", `"${name}" refused: ${answer.reason}`);
    if (fds.length !== 2) throw new SegmentError("handshake", `the answer carried ${fds.length} fds, not 2`);
    const peer = os.peerCredentials(fd);
    if (peer.uid !== os.geteuid() && !uids.includes(peer.uid)) {
      throw new SegmentError("refused", `the listener at "${name}" runs as uid ${peer.uid} (allowUids)`);
    }
    if ((os.fstat(fds[1]).mode & S_IFMT) !== S_IFSOCK) {
      throw new SegmentError("handshake", "the answer's second fd is no socket");
    }
    // A listening socket (or a packet one) never reads the end of a stream: a watch on it would not
    // learn of the listener's death (in Bun and Node it waits for good).
    const kind = os.socketKind(fds[1]);
    if (kind.type !== SOCK_STREAM || kind.listening) {
      throw new SegmentError("handshake", "the answer's second fd is no connected stream socket");
    }
    // 4. The segment and its fifos, every offset checked.
    const segment = host.attachMemfd(fds[0], peer.uid !== os.geteuid());
    try {
      if (segment.size !== answer.segmentSize) {
        throw new SegmentError(
          "handshake",
          `the answer says ${answer.segmentSize} bytes, the segment has ${segment.size}`,
        );
      }
      let rx, tx;
      try {
        rx = segment.fifoAt(answer.rx);
        tx = segment.fifoAt(answer.tx);
      } catch (error) {
        throw new SegmentError("handshake", `the answer's fifos: ${(error as Error).message}`);
      }
      if (rx.offset === tx.offset) throw new SegmentError("handshake", "the answer names one fifo twice");
      const end = fds.pop()!; // the watch owns it from here, also when it throws
      return held(host, segment, rx, tx, { pid: peer.pid, uid: peer.uid }, (onGone) => {
        try {
          return watchPeerEnd(os, end, onGone);
        } catch (error) {
          throw new SegmentError("handshake", `the answer's socket: ${(error as Error).message}`);
        }
      });
    } catch (error) {
      host.delete(segment);
      throw error;
    }
  } finally {
    os.close(fd); // the handshake is over: the pair tells of the listener's end
    for (const passed of fds) os.close(passed);
  }
}
