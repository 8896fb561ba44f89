/**
 * A doorbell: a listening Unix stream socket in the abstract namespace, watched by the runtime's
 * own event loop, so that another process can wake this one's event loop by connecting once and
 * writing a byte per ring. No thread waits on it. The bytes carry no meaning: a ring only says
 * "look at your events". Nothing is left in the file system, and the name vanishes when the
 * process dies.
 *
 * Each runtime's lightest watcher is used, since its cost is on the path of every wake-up: Bun's
 * native `Bun.listen` handlers; in Deno and Node, the socket bound through libc (so Deno needs no
 * `--allow-net`) and watched with `node:net`.
 *
 * Where the socket is watched through `node:net` (Deno, Node), the doorbell also has a pipe,
 * read with `node:net`'s `onread`, whose write end it hands to wakers that ask at its gate (a
 * seqpacket socket, SCM_RIGHTS): a byte through a pipe wakes the process sooner than one through
 * a socket. The socket stays: for the first ring and for wakers that cannot use the pipe. Bun's
 * listener keeps the socket alone: Bun reads a pipe with five system calls a wake-up (and its
 * `net.Socket({ fd })` fails).
 *
 * @module
 */

import net from "node:net";
import type { Admission } from "./admission.ts";
import { type Os, OsError } from "./os.ts";

/** A listening doorbell. */
export interface Doorbell {
  /** The random key its name was made from. */
  readonly key: number;
  /** The socket name (abstract: no "/"). */
  readonly name: string;
  /** Keeps the event loop alive while waits are pending. */
  ref(): void;
  /** Lets the process exit although the doorbell listens. */
  unref(): void;
  /** Stops listening and drops every connection. Idempotent. */
  close(): void;
  /**
   * Accepts the connections the runtime's listener left waiting: Deno's `node:net` stops
   * accepting for good once an accept failed for want of fds, without a word, and is then
   * replaced by a server on a duplicate of the socket. Called at each liveness tick; a no-op
   * where the listener recovers by itself. Also answers the pipe's gate.
   */
  recover(): void;
}

const ATTEMPTS = 8;
/** Connections a doorbell's `recover` accepts at most per call. */
const RECOVER_BATCH = 64;

/**
 * Listens on a fresh abstract socket named `nameOf(key)` for a random key (another key when the
 * name is taken), calling `onRing` whenever bytes arrive on any connection. Unreferenced at
 * first. Bun listens with its own API; otherwise the socket is made and bound through libc
 * (`os.listenUnix`) and handed to `node:net` by fd, so Deno needs no `--allow-net` for it. With
 * `gateOf`, and where the socket is watched through `node:net` (Deno, Node), it also makes the
 * doorbell's pipe and hands its write end out at the seqpacket gate `gateOf(name)` (see
 * {@link openPipeGate}); the doorbell works without it. The connections it holds count against
 * `admission`.
 */
export async function openDoorbell(
  os: Os,
  nameOf: (key: number) => string,
  onRing: () => void,
  gateOf: ((name: string) => string) | undefined,
  admission: Admission,
): Promise<Doorbell> {
  const listen = nativeListen();
  // Bun's own listener reads the socket leaner than Bun can read a pipe: no pipe then.
  const piped = gateOf !== undefined && listen === undefined;
  const made: { gate?: PipeGate } = {};
  // A ring through the socket may come from a waker that waits for the pipe: answer the gate then.
  // After the waits it settled have resumed: the accept is not on the path of the wake-up.
  const handOver = () => made.gate?.handOver();
  const onSocketRing = piped
    ? () => {
      onRing();
      queueMicrotask(handOver);
    }
    : onRing;
  const bell = await listenSocket(os, listen, nameOf, onSocketRing, admission);
  if (!piped) return bell;
  const opened = made.gate = openPipeGate(os, gateOf(bell.name), onRing);
  if (opened === undefined) return bell;
  return {
    ...bell,
    recover: () => {
      bell.recover();
      opened.handOver();
    },
    close: () => {
      bell.close();
      opened.close();
    },
  };
}

async function listenSocket(
  os: Os,
  listen: Listen | undefined,
  nameOf: (key: number) => string,
  onRing: () => void,
  admission: Admission,
): Promise<Doorbell> {
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const key = crypto.getRandomValues(new Uint32Array(1))[0];
    const name = nameOf(key);
    if (listen !== undefined) {
      try {
        return listen(name, key, onRing, admission, os);
      } catch (error) {
        lastError = error;
        if (addressInUse(error)) continue;
        throw error;
      }
    }
    // Bound through libc (no runtime permission beyond FFI), then watched by the reactor.
    let fd: number;
    try {
      fd = os.listenUnix(name, Math.min(512, admission.limit)); // what waits in the backlog costs no fd yet
    } catch (error) {
      lastError = error;
      if (error instanceof OsError && error.code === "EADDRINUSE") continue;
      throw error;
    }
    let bell: Doorbell;
    try {
      bell = await watchListener(fd, onRing, { key, name, os, admission });
    } catch (error) {
      os.close(fd);
      throw error;
    }
    bell.unref();
    return bell;
  }
  throw lastError;
}

/** The pipe of a doorbell and the gate that hands out its write end. */
export interface PipeGate {
  /** Sends the write end to every connection waiting at the gate (a batch at most), closing each. */
  handOver(): void;
  /** Stops watching the pipe and closes both ends and the gate. */
  close(): void;
}

const HANDOVER_BYTE = new Uint8Array([1]);
/** Where the pipes' rings are read to (their bytes say nothing; reads never overlap). */
const PIPE_READS = new Uint8Array(256);

/**
 * Makes a pipe whose read end the event loop watches (`onRing` when bytes arrive) and a listening
 * seqpacket socket at `gateName` whose connections are each sent the write end, the read end
 * watched through `node:net` (so not in Bun, whose `net.Socket({ fd })` fails; `openDoorbell`
 * decides where a pipe is worth it). Undefined when any part fails (the socket doorbell then
 * serves alone). The read end never keeps the process alive: the socket listener's reference does
 * that.
 */
export function openPipeGate(os: Os, gateName: string, onRing: () => void): PipeGate | undefined {
  let ends: { read: number; write: number };
  try {
    ends = os.pipe();
  } catch {
    return undefined;
  }
  let gate = -1;
  let reader: net.Socket;
  try {
    gate = os.listenUnix(gateName, 64, "seqpacket");
    // `onread`: each read lands in one buffer and calls `onRing` straight from the reactor's
    // callback, with no Buffer, 'data' event or stream bookkeeping, whose nextTick callbacks
    // would run before the wait's continuation (in Node: 0.4 us from ring to continuation
    // instead of 2.9).
    reader = new net.Socket({
      fd: ends.read,
      readable: true,
      writable: false,
      onread: { buffer: PIPE_READS, callback: () => (onRing(), true) },
    });
  } catch {
    if (gate >= 0) os.close(gate);
    os.close(ends.read);
    os.close(ends.write);
    return undefined;
  }
  reader.unref();
  reader.on("error", () => reader.destroy());
  let closed = false;
  return {
    handOver() {
      for (let i = 0; i < RECOVER_BATCH && !closed; i++) {
        let conn: number;
        try {
          conn = os.accept(gate);
        } catch {
          return; // out of fds: the next socket ring or tick tries again
        }
        if (conn < 0) return;
        try {
          os.sendPacket(conn, HANDOVER_BYTE, [ends.write]);
        } catch { /* the waker left already */ }
        os.close(conn);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      reader.destroy(); // closes the read end: a waker's next write fails with EPIPE
      os.close(gate);
      os.close(ends.write);
    },
  };
}

type Listen = (name: string, key: number, onRing: () => void, admission: Admission, os: Os) => Doorbell;

interface BunSocket {
  /** The socket's fd (Bun 1.4). */
  readonly fd?: number;
  unref(): void;
  terminate(): void;
}
interface BunServer {
  ref(): void;
  unref(): void;
  stop(closeActiveConnections: boolean): void;
}
interface BunLike {
  listen(options: {
    unix: string;
    socket: { open(socket: BunSocket): void; data(): void; close(socket: BunSocket): void; error(): void };
  }): BunServer;
}
/**
 * The runtime's own listener for an abstract name, where it is the lighter watcher; else
 * undefined (the socket is then bound through libc and watched with `node:net`, beside a pipe).
 * Only Bun's: Deno's `Deno.listen` (with net access) made the sleeping round trip longer than
 * `node:net` reading the pipe with `onread`, pinned and unpinned.
 */
function nativeListen(): Listen | undefined {
  const g = globalThis as { Bun?: BunLike };
  return g.Bun !== undefined ? bunListen(g.Bun) : undefined;
}

/** Whether `Bun.listen` failed because the name is taken. */
function addressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EADDRINUSE";
}

/** Bun: native socket handlers, no stream or event emitter between the byte and `onRing`. */
function bunListen(bun: BunLike): Listen {
  return (name, key, onRing, admission, os) => {
    const admitted = new Map<BunSocket, () => void>();
    const server = bun.listen({
      unix: "\0" + name,
      socket: {
        open: (socket) => {
          socket.unref(); // only the server (while waits pend) keeps the process alive
          admitted.set(
            socket,
            admission.admit(peerPid(os, socket.fd), () => {
              socket.terminate();
              onRing(); // a byte it still held is not lost
            }),
          );
        },
        data: () => onRing(),
        close: (socket) => {
          admitted.get(socket)?.();
          admitted.delete(socket);
        },
        error: () => {}, // the socket closes; the ringer reconnects
      },
    });
    server.unref();
    return doorbellOf(key, name, server, () => server.stop(true));
  };
}

/** The pid of the process at the other end of the connected socket `fd`; -1 when unknown. */
function peerPid(os: Os, fd: number | undefined): number {
  if (typeof fd !== "number" || fd < 0) return -1;
  try {
    return os.peerCredentials(fd).pid;
  } catch {
    return -1;
  }
}

/**
 * Watches an already bound and listening stream socket `fd` (ours from then on) from the event
 * loop: `onRing` runs whenever bytes arrive on any connection to it. Referenced: it keeps the
 * process alive until closed (a listener, like a server). Its connections count against
 * `admission`; one it drops to make room counts as a ring. With `os` (and not in Bun), its `recover` accepts through libc what the server left
 * waiting.
 */
export async function watchListener(
  fd: number,
  onRing: () => void,
  { key = 0, name = "", os, admission }: { key?: number; name?: string; os?: Os; admission: Admission },
): Promise<Doorbell> {
  const connections = new Set<net.Socket>();
  const watch = (socket: net.Socket) => {
    socket.unref();
    connections.add(socket);
    socket.on("data", onRing);
    socket.on("error", () => socket.destroy());
    const release = admission.admit(
      os ? peerPid(os, (socket as unknown as { _handle?: { fd?: number } })._handle?.fd) : -1,
      () => {
        socket.destroy();
        onRing(); // a byte it still held is not lost
      },
    );
    socket.on("close", () => {
      connections.delete(socket);
      release();
    });
  };
  const serve = async (listening: number): Promise<net.Server> => {
    const server = net.createServer(watch);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ fd: listening }, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      server.close();
      throw error;
    }
    server.on("error", () => {}); // an accept that fails (EMFILE) is no reason to throw; see recover
    return server;
  };
  let listening = fd;
  let server = await serve(listening);
  let reffed = true;
  // Where `net.Socket({ fd })` works (not Bun, whose listener recovers by itself), what the
  // server left in the backlog is accepted here and watched the same way.
  const adopt = os !== undefined && (globalThis as { Bun?: unknown }).Bun === undefined;
  // Deno's server accepts nothing more once an accept failed for want of fds, without a word; a
  // flood of connections can cause that, as it closes a dropped connection's fd only later. So a
  // server that left a connection waiting, or that may have met a flood (connections were dropped
  // to make room since the last look), is replaced by a server on a duplicate of the socket.
  const restartable = adopt && (globalThis as { Deno?: unknown }).Deno !== undefined;
  let droppedBefore = admission.dropped;
  /** Whether the server may have stopped accepting: set until a replacement listens. */
  let suspect = false;
  let restarting = false;
  let stopped = false;
  const restart = async () => {
    restarting = true;
    suspect = false; // set again by what happens meanwhile, or below when this fails
    let copy = -1;
    try {
      copy = os!.dup(listening);
      const fresh = await serve(copy);
      if (stopped) {
        fresh.close();
        return;
      }
      const old = server;
      server = fresh;
      listening = copy;
      if (!reffed) fresh.unref();
      old.close(); // closes the old fd; its connections stay watched
    } catch {
      if (copy >= 0) os!.close(copy);
      suspect = true; // out of fds still: the next look tries again
    } finally {
      restarting = false;
    }
  };
  const recover = () => {
    if (!adopt || stopped) return;
    if (admission.dropped !== droppedBefore) {
      droppedBefore = admission.dropped;
      suspect = true;
    }
    for (let i = 0; i < RECOVER_BATCH; i++) {
      let conn: number;
      try {
        conn = os!.accept(listening);
      } catch {
        break; // out of fds still (or closed): the next tick tries again
      }
      if (conn < 0) break; // nothing waiting
      suspect = true;
      let socket: net.Socket;
      try {
        socket = new net.Socket({ fd: conn, readable: true, writable: false });
      } catch {
        os!.close(conn);
        break;
      }
      watch(socket);
      socket.resume();
    }
    if (restartable && suspect && !restarting) void restart();
  };
  const listener = {
    ref: () => {
      reffed = true;
      server.ref();
    },
    unref: () => {
      reffed = false;
      server.unref();
    },
  };
  return doorbellOf(key, name, listener, () => {
    stopped = true;
    server.close();
    for (const socket of connections) socket.destroy();
    connections.clear();
  }, recover);
}

/** A doorbell over a listener that can be referenced and unreferenced; `stop` runs once, at the first close. */
function doorbellOf(
  key: number,
  name: string,
  listener: { ref(): void; unref(): void },
  stop: () => void,
  recover: () => void = () => {},
): Doorbell {
  let closed = false;
  return {
    key,
    name,
    recover,
    ref: () => {
      if (!closed) listener.ref();
    },
    unref: () => {
      if (!closed) listener.unref();
    },
    close: () => {
      if (closed) return;
      closed = true;
      stop();
    },
  };
}

/** What `watchPeerEnd` needs of `Bun.connect` with an fd. */
interface BunFdSocket {
  unref(): void;
  terminate(): void;
}
type BunConnect = (options: {
  fd: number;
  socket: {
    data(): void;
    end(): void;
    close(): void;
    error(): void;
    connectError?(): void;
  };
}) => Promise<BunFdSocket>;

/**
 * Calls `onClose` once when the other end of the connected stream socket `fd` closes: one end of
 * a socketpair whose other end lives in another process, which the kernel closes when that
 * process dies. Data on it is read and dropped. Takes `fd` (closed when the watch stops or fires)
 * and returns a function that stops watching. Unreferenced: it never keeps the process alive.
 * Deno and Node watch it as a `net.Socket`; Bun, where `net.Socket({ fd })` fails, adopts it with
 * `Bun.connect`. Throws a TypeError (and closes `fd`) for an fd the runtime cannot watch.
 */
export function watchPeerEnd(os: Os, fd: number, onClose: () => void): () => void {
  let done = false;
  const fire = () => {
    if (done) return;
    done = true;
    onClose();
  };
  // Bun.connect({ fd }): Bun's FdSocketOptions, missing from some versions of its types.
  const bun = (globalThis as unknown as { Bun?: { connect: BunConnect } }).Bun;
  if (bun !== undefined) {
    let adopted: BunFdSocket | undefined;
    bun.connect({ fd, socket: { data() {}, end: fire, close: fire, error: fire, connectError: fire } }).then(
      (socket) => {
        if (done) return socket.terminate(); // stopped, or its end came first
        adopted = socket;
        socket.unref();
      },
      fire,
    );
    return () => {
      done = true;
      adopted?.terminate();
    };
  }
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: false });
  } catch (error) {
    os.close(fd);
    throw new TypeError(`fd ${fd} cannot be watched: ${(error as Error).message}`);
  }
  socket.unref();
  socket.on("close", fire);
  socket.on("error", () => socket.destroy());
  socket.resume();
  return () => {
    done = true;
    socket.destroy();
  };
}
