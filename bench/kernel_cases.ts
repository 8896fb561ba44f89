// The alternatives a user would pick today, measured like the fifo: a Unix domain socket
// (Deno.listen/Deno.connect, Bun.listen/Bun.connect, node:net in Node) and a pipe from a child
// process. Each side runs in its own process of one runtime.
import { spawn } from "node:child_process";
import { writeSync } from "node:fs";
import * as net from "node:net";
import { clientPicker, SERVER_WARMUP } from "./fifo_cases.ts";

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}
interface BunApi {
  listen(options: {
    unix: string;
    socket: { data(socket: unknown, data: Uint8Array): void; close(): void; open?(socket: unknown): void };
  }): { stop(): void };
  connect(options: { unix: string; socket: { data(): void; drain(socket: BunSocket): void } }): Promise<BunSocket>;
  stdout: { writer(): { write(data: Uint8Array): number; flush(): number | Promise<number> } };
  spawn(cmd: string[], options: { stdout: "pipe" }): { stdout: ReadableStream<Uint8Array>; exited: Promise<number> };
}

const bun = (globalThis as unknown as { Bun?: BunApi }).Bun;
/** Node: neither Bun's nor Deno's own API, so node:net and node:child_process. */
const node = !bun && !("Deno" in globalThis);

/** Node's side of the socket read: a node:net server counting bytes until the writer ends. */
function nodeSocketRead(path: string, ready: () => void): Promise<{ seconds: number; bytes: number }> {
  let got = 0;
  let t0 = 0;
  return new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.on("data", (data: Uint8Array) => {
        if (t0 === 0) t0 = performance.now();
        got += data.byteLength;
      });
      socket.on("end", () => {
        server.close();
        resolve({ seconds: (performance.now() - t0) / 1000, bytes: got });
      });
    });
    server.listen({ path }, ready);
  });
}

/** Node's side of the socket write: node:net, waiting for "drain" whenever write says the buffer is full. */
async function nodeSocketWrite(path: string, chunk: Uint8Array, count: number): Promise<void> {
  const socket = net.connect({ path });
  await new Promise((r) => socket.once("connect", r));
  for (let i = 0; i < count; i++) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  await new Promise<void>((r) => socket.end(r));
}

/** Reads a byte count from a socket server until the writer closes; times first byte to EOF. */
export async function socketRead(path: string, ready: () => void): Promise<{ seconds: number; bytes: number }> {
  let got = 0;
  let t0 = 0;
  if (bun) {
    return await new Promise((resolve) => {
      const server = bun.listen({
        unix: path,
        socket: {
          data(_s, data) {
            if (t0 === 0) t0 = performance.now();
            got += data.byteLength;
          },
          close() {
            server.stop();
            resolve({ seconds: (performance.now() - t0) / 1000, bytes: got });
          },
        },
      });
      ready();
    });
  }
  if (node) return await nodeSocketRead(path, ready);
  const listener = Deno.listen({ transport: "unix", path });
  ready();
  const conn = await listener.accept();
  const buf = new Uint8Array(256 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    if (t0 === 0) t0 = performance.now();
    got += n;
  }
  conn.close();
  listener.close();
  return { seconds: (performance.now() - t0) / 1000, bytes: got };
}

/** Writes `count` chunks of `size` bytes to the socket server at `path`. */
export async function socketWrite(path: string, size: number, count: number): Promise<void> {
  const chunk = new Uint8Array(size).fill(0xab);
  if (bun) {
    let resume: (() => void) | null = null;
    const socket = await bun.connect({
      unix: path,
      socket: {
        data() {},
        drain() {
          const r = resume;
          resume = null;
          r?.();
        },
      },
    });
    for (let i = 0; i < count; i++) {
      let off = 0;
      while (off < size) {
        const n = socket.write(off === 0 ? chunk : chunk.subarray(off));
        off += n;
        if (off < size) await new Promise<void>((r) => (resume = r));
      }
    }
    socket.end();
    return;
  }
  if (node) return await nodeSocketWrite(path, chunk, count);
  const conn = await Deno.connect({ transport: "unix", path });
  for (let i = 0; i < count; i++) {
    let off = 0;
    while (off < size) off += await conn.write(off === 0 ? chunk : chunk.subarray(off));
  }
  conn.close();
}

/** The child side of the pipe case: `count` writes of `size` bytes to stdout. */
export async function pipeWrite(size: number, count: number): Promise<void> {
  const chunk = new Uint8Array(size).fill(0xab);
  if (bun) {
    const writer = bun.stdout.writer();
    for (let i = 0; i < count; i++) {
      writer.write(chunk);
      if (i % 64 === 63) await writer.flush();
    }
    await writer.flush();
    return;
  }
  // Blocking writes to fd 1 (Deno's and Node's alike); Node's fd 1 may be nonblocking: EAGAIN
  // is tried again.
  const write = node ? (data: Uint8Array) => writeSync(1, data) : (data: Uint8Array) => Deno.stdout.writeSync(data);
  for (let i = 0; i < count; i++) {
    let off = 0;
    while (off < size) {
      try {
        off += write(off === 0 ? chunk : chunk.subarray(off));
      } catch (error) {
        if ((error as { code?: string }).code !== "EAGAIN") throw error;
      }
    }
  }
}

/** The parent side: starts the child and counts what arrives on its stdout. */
export async function pipeRead(command: string[]): Promise<{ seconds: number; bytes: number }> {
  let got = 0;
  let t0 = 0;
  let stream: ReadableStream<Uint8Array>;
  let exited: Promise<number | null>;
  if (node) {
    const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    const exit = new Promise<number | null>((r) => child.on("close", r));
    child.stdout!.on("data", (chunk: Uint8Array) => {
      if (t0 === 0) t0 = performance.now();
      got += chunk.byteLength;
    });
    failedIf(await exit);
    return { seconds: (performance.now() - t0) / 1000, bytes: got };
  }
  if (bun) {
    const child = bun.spawn(command, { stdout: "pipe" });
    stream = child.stdout;
    exited = child.exited;
  } else {
    const child = new Deno.Command(command[0], { args: command.slice(1), stdout: "piped", stderr: "inherit" }).spawn();
    stream = child.stdout;
    exited = child.status.then((status) => status.code);
  }
  for await (const chunk of stream) {
    if (t0 === 0) t0 = performance.now();
    got += chunk.byteLength;
  }
  failedIf(await exited);
  return { seconds: (performance.now() - t0) / 1000, bytes: got };
}

/** The writer of a pipe case must have ended well: else its row would measure what it failed to write. */
function failedIf(code: number | null): void {
  if (code !== 0) throw new Error(`the pipe's writer exited with ${code}`);
}

/** The echo server of the socket round trip (node:net, as in Deno, Bun and Node alike): echoes `rounds` 64 B messages. */
export async function udsEcho(path: string, rounds: number, ready: () => void): Promise<void> {
  const net = await import("node:net");
  await new Promise<void>((resolve) => {
    const server = net.createServer((socket) => {
      let seen = 0;
      socket.setNoDelay?.(true);
      socket.on("data", (data: Uint8Array) => {
        socket.write(data);
        seen += data.byteLength;
        if (seen >= rounds * 64) {
          socket.end();
          server.close();
          resolve();
        }
      });
    });
    server.listen({ path }, ready);
  });
}

/** The anchor of a server's loop: a node:net server that echoes `rounds` 64 B requests over all its connections. */
export async function udsServe(path: string, rounds: number, ready: () => void): Promise<void> {
  const net = await import("node:net");
  await new Promise<void>((resolve) => {
    let seen = 0;
    const sockets = new Set<import("node:net").Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("data", (data: Uint8Array) => {
        socket.write(data);
        seen += data.byteLength;
        if (seen >= (rounds + SERVER_WARMUP) * 64) {
          for (const s of sockets) s.end();
          server.close();
          resolve();
        }
      });
    });
    server.listen({ path }, ready);
  });
}

/** Its clients: `count` connections; each round a random one sends 64 B and waits for the echo, timed. */
export async function udsClients(path: string, count: number, rounds: number) {
  const net = await import("node:net");
  let wake: () => void = () => {};
  let pending = 0;
  const sockets: import("node:net").Socket[] = [];
  // One at a time: a thousand at once overflow the listener's backlog (EAGAIN in Deno).
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ path });
    await new Promise((r) => socket.once("connect", r));
    socket.on("data", (data: Uint8Array) => {
      pending -= data.byteLength;
      if (pending <= 0) wake();
    });
    sockets.push(socket);
  }
  const msg = new Uint8Array(64);
  const samples = new Float64Array(rounds);
  const pick = clientPicker(count);
  for (let i = -SERVER_WARMUP; i < rounds; i++) {
    const socket = sockets[pick()];
    const t = performance.now();
    pending += 64;
    const back = new Promise<void>((r) => (wake = r));
    socket.write(msg);
    await back;
    if (i >= 0) samples[i] = (performance.now() - t) * 1e6;
  }
  for (const socket of sockets) socket.destroy();
  const meanNs = samples.reduce((a, b) => a + b, 0) / rounds;
  samples.sort();
  return { meanNs, p50Ns: samples[rounds >> 1], p99Ns: samples[Math.floor(rounds * 0.99)] };
}

/** The client: `rounds` 64 B round trips, each timed, over node:net; both sides sleep in their event loops. */
export async function udsPing(path: string, rounds: number) {
  const net = await import("node:net");
  const socket = net.connect({ path });
  await new Promise((r) => socket.once("connect", r));
  const msg = new Uint8Array(64);
  let pending = 0;
  let wake: () => void = () => {};
  socket.on("data", (data: Uint8Array) => {
    pending -= data.byteLength;
    if (pending <= 0) wake();
  });
  const samples = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    pending += 64;
    const back = new Promise<void>((r) => (wake = r));
    socket.write(msg);
    await back;
    samples[i] = (performance.now() - t) * 1e6;
  }
  socket.destroy();
  const meanNs = samples.reduce((a, b) => a + b, 0) / rounds;
  samples.sort();
  return { meanNs, p50Ns: samples[rounds >> 1], p99Ns: samples[Math.floor(rounds * 0.99)] };
}
