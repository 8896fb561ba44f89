/**
 * The cross-process benchmark: fifo streams, framed messages and round trips between processes
 * of every runtime pair, the wake-up latency and idle CPU of sleeping waits, and beside them a
 * Unix socket and a pipe in each runtime, measured the same way. Prints a table and writes
 * bench/results/latest.json and bench/results/throughput.svg.
 *
 *   deno run -A bench/run.ts [--quick] [--reps N] [--anchors DIR] [--out DIR] [--runtimes deno,bun,node]
 *   bun bench/run.ts ...
 *   node --no-warnings bench/run.ts ...
 *
 * This machine's timings swing by up to 3x from minute to minute (a VM whose vCPUs the host
 * moves around), so every case runs `--reps` times (default 3) and the table keeps each one's
 * best. With `--anchors DIR` (the C programs of ../shared/anchors, for developers), each rep
 * first runs the same case in C, and the ratio to C is taken within the rep (same machine
 * state), then the median over reps is reported; a runtime's own ratio for the message ring
 * rows is taken against a C run right after its measurement. A runtime's sleeping round trip
 * alternates with its Unix socket anchor in five parts per rep, and the ratio reported is the
 * median of those paired parts. A polling fifo stream is timed after its first quarter: the
 * runtimes compile the hot code meanwhile on the two CPUs both sides poll on (a chunked fifo has
 * more of it), which slowed the first few hundred milliseconds of every stream, by up to a fifth.
 *
 * @module
 */

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { type FifoOptions, SegmentMain } from "../mod.ts";
import { throughputChart } from "./chart.ts";
import { done, interruptedBy, track } from "./interrupt.ts";
import { type BenchRuntime, binary, median, runtimesOption } from "./spawn_peer.ts";

type Runtime = BenchRuntime;
type Result = Record<string, number>;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PEER = `${ROOT}bench/peer.ts`;
const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes("--quick");
const reps = Number(option("--reps") ?? (quick ? 1 : 3));
const anchors = option("--anchors");
const outDir = option("--out") ?? `${ROOT}bench/results`;
const MiB = 1 << 20;
const SIZES = [64, 1024, 65536];
/** Bytes streamed per fifo case, by write size (the C anchor streams 4x as much). */
const STREAM_BYTES: Record<number, number> = quick
  ? { 64: MiB, 1024: 4 * MiB, 65536: 16 * MiB }
  : { 64: 256 * MiB, 1024: 1024 * MiB, 65536: 4096 * MiB };
const KERNEL_WRITES: Record<number, number> = quick
  ? { 64: 2000, 1024: 2000, 65536: 200 }
  : { 64: 200_000, 1024: 200_000, 65536: 20_000 };
const MESSAGES = quick ? 20_000 : 4_000_000;
/** Messages of the message ring case: as many as the C anchor's (MESSAGES * 4), so that neither side's warm-up weighs more. */
const RING_MESSAGES = MESSAGES * 4;
const ROUNDS = quick ? 2_000 : 200_000;
const SLEEPING_ROUNDS = quick ? 200 : 20_000;
/** Parts of the sleeping round trip, alternating with the socket's (each SLEEPING_ROUNDS / INTERLEAVE rounds). */
const INTERLEAVE = quick ? 1 : 5;
/** A server's clients (each a request and a reply fifo, or a connection), and its round trips. */
const CLIENTS = quick ? 100 : 1000;
const SERVER_ROUNDS = quick ? 100 : 4_000;
/** waitAny looks at every client at each wake-up: fewer of its rounds. */
const SERVER_ANY_ROUNDS = quick ? 50 : 1_000;
/** A first wait, then the one measured (CPU per second of it). */
const IDLE_FIRST_MS = quick ? 50 : 1000;
const IDLE_MS = quick ? 50 : 3000;
/** The runtimes measured: all three, or those `--runtimes deno,bun` names. */
const RUNTIMES: readonly Runtime[] = runtimesOption(args);
/** Each runtime with itself, then across: Deno and Bun both ways, Node with each of them. */
const PAIRS: [Runtime, Runtime][] = ([
  ["deno", "deno"],
  ["bun", "bun"],
  ["node", "node"],
  ["deno", "bun"],
  ["bun", "deno"],
  ["node", "deno"],
  ["bun", "node"],
] as [Runtime, Runtime][]).filter(([p, c]) => RUNTIMES.includes(p) && RUNTIMES.includes(c));
const pin = existsSync("/usr/bin/taskset") && !quick;
// Most cases poll on both sides at once, each side holding its CPU: on one CPU each side would run
// only when the kernel preempts the other, a time slice per message, and the run would take hours
// (the quick one over 6 minutes) to measure the scheduler. Refused at once instead.
if (availableParallelism() < 2) {
  console.error(
    "bench/run.ts needs two CPUs (its producers and consumers poll at the same time); this process may run on " +
      `${availableParallelism()} (its CPU affinity). bench/queue.ts and bench/connection.ts run on one.`,
  );
  process.exit(2);
}
const log = (text: string) => console.error(text);

interface Running {
  ready: Promise<void>;
  result: Promise<Result>;
  kill(): void;
}

/** Starts a bench/peer.ts role under a runtime, pinned to a CPU where taskset exists (`cpu` null: not pinned). */
function start(runtime: Runtime, cpu: number | null, role: string, ...rest: (string | number)[]): Running {
  const base = runtime === "deno"
    ? [binary("deno"), "run", "-A", "--quiet", PEER]
    : runtime === "node"
    ? [binary("node"), "--no-warnings", PEER]
    : [binary("bun"), PEER];
  const argv = [...(pin && cpu !== null ? ["taskset", "-c", String(cpu)] : []), ...base, role, ...rest.map(String)];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const untrack = track(child);
  let out = "";
  let err = "";
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => (markReady = r));
  child.stdout!.setEncoding("utf8").on("data", (c: string) => {
    out += c;
    if (out.includes("READY")) markReady();
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  const result = new Promise<Result>((resolve, reject) => {
    child.on("close", (code) => {
      untrack();
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (interruptedBy()) reject(new Error(`interrupted by ${interruptedBy()}`));
      else if (code !== 0 || !line) reject(new Error(`${runtime} ${role} failed (code ${code}): ${err || out}`));
      else resolve(JSON.parse(line.slice(7)));
    });
  });
  result.catch(() => markReady()); // a peer that dies before READY must not hang the run
  return { ready, result, kill: () => child.kill("SIGKILL") };
}

/** Runs the two sides of a fifo case over a fresh segment; returns [first side, second side]. */
async function fifoCase(
  first: Runtime,
  second: Runtime,
  roles: [string, string],
  fifoSize: number,
  extra: (number | string)[],
  twoFifos = false,
  options: FifoOptions = {},
  pinned = true,
): Promise<[Result, Result]> {
  using sm = new SegmentMain();
  const name = `svmbench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const segment = sm.create({ type: "shm", name, size: 4 * MiB });
  const a = segment.allocFifo(fifoSize, "rx", options)!;
  // Both sides name the fifos in the same order: ping (out, back) and echo (in, out).
  const fifos = twoFifos ? [a.offset, segment.allocFifo(fifoSize, "tx")!.offset] : [a.offset];
  const c = start(second, pinned ? 1 : null, roles[1], name, ...fifos, ...extra);
  const p = start(first, pinned ? 0 : null, roles[0], name, ...fifos, ...extra);
  try {
    await Promise.all([c.ready, p.ready]);
    a.tag = 1; // go
    return await Promise.all([p.result, c.result]);
  } finally {
    p.kill();
    c.kill();
  }
}

/** Runs the two sides of a message ring case: a go-flag fifo and `ringCount` rings of 1 MiB; args after them. */
async function ringCase(
  first: Runtime,
  second: Runtime,
  roles: [string, string],
  build: (rings: number[]) => [(number | string)[], (number | string)[]],
  ringCount: number,
): Promise<[Result, Result]> {
  using sm = new SegmentMain();
  const name = `svmbench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const segment = sm.create({ type: "shm", name, size: 8 * MiB });
  const go = segment.allocFifo(4096)!;
  const rings = Array.from({ length: ringCount }, () => segment.allocMessageRing(MiB)!.offset);
  const [firstArgs, secondArgs] = build(rings);
  const c = start(second, 1, roles[1], name, go.offset, ...secondArgs);
  const p = start(first, 0, roles[0], name, go.offset, ...firstArgs);
  try {
    await Promise.all([c.ready, p.ready]);
    go.tag = 1;
    return await Promise.all([p.result, c.result]);
  } finally {
    p.kill();
    c.kill();
  }
}

/**
 * A server (CPU 1) and its CLIENTS clients (one process, CPU 0) over a fresh segment: each client
 * a request and a reply fifo; `role` "server-set" or "server-any". The clients' figures.
 */
async function serverCase(runtime: Runtime, role: "server-set" | "server-any", rounds: number): Promise<Result> {
  using sm = new SegmentMain();
  const name = `svmbench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const segment = sm.create({ type: "shm", name, size: 16 * MiB });
  const go = segment.allocFifo(4096)!;
  const offsets = () => Array.from({ length: CLIENTS }, () => segment.allocFifo(4096)!.offset).join(",");
  const rx = offsets();
  const tx = offsets();
  const server = start(runtime, 1, role, name, go.offset, rx, tx, rounds);
  const clients = start(runtime, 0, "server-clients", name, go.offset, rx, tx, rounds);
  try {
    await Promise.all([server.ready, clients.ready]);
    go.tag = 1;
    const [got] = await Promise.all([clients.result, server.result]);
    return got;
  } finally {
    server.kill();
    clients.kill();
  }
}

/** The C anchor programs, compiled once, when `--anchors` names their folder. */
const cDir = anchors ? mkdtempSync(`${tmpdir()}/svmbench-c-`) : undefined;
if (anchors && cDir) {
  for (const prog of ["shm_ring", "pingpong"]) {
    execFileSync("gcc", ["-O2", "-o", `${cDir}/${prog}`, `${anchors}/${prog}.c`, "-lrt"]);
  }
}
function runC(prog: string, ...rest: (string | number)[]): Result {
  const out = execFileSync(`${cDir}/${prog}`, rest.map(String), { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.startsWith("consumer") || l.startsWith("pingpong"))!;
  return Object.fromEntries([...line.matchAll(/(\S+)=([0-9.]+)/g)].map((m) => [m[1], Number(m[2])]));
}

interface Row {
  kind:
    | "fifo"
    | "fifo-chunked"
    | "fifo-chunked-256k"
    | "fifo-sleep"
    | "msg"
    | "ring"
    | "ring-rtt"
    | "floor-rtt"
    | "pingpong"
    | "wakeup"
    | "uds-rtt"
    | "wakeup-free"
    | "uds-rtt-free"
    | "server-set"
    | "server-any"
    | "uds-server"
    | "idle"
    | "uds"
    | "pipe";
  producer: Runtime;
  consumer: Runtime;
  size: number;
  gbps?: number;
  mops?: number;
  meanNs?: number;
  p50Ns?: number;
  p99Ns?: number;
  cpuMs?: number;
}
const rows: Row[] = [];
/** Per case key: the ratio to C in each rep (best pair / C, or C / best pair for times). */
const vsC: Record<string, number[]> = {};
/** Per pair: the chunked fifo's 64 KiB stream over the contiguous one's, in each rep. */
const vsContiguous: Record<string, number[]> = {};
/** Per runtime: the sleeping round trip's p50 over the Unix socket's, in each part of each rep (measured seconds apart). */
const vsSocket: Record<string, number[]> = {};
/** The same with neither process pinned, as a service runs: the scheduler places each wake-up. */
const vsSocketFree: Record<string, number[]> = {};
/** Per runtime: a server's round trip in a WaitSet over its clients' fifos, over node:net's with as many connections. */
const vsServerSocket: Record<string, number[]> = {};

/**
 * Bytes of segment memory 1000 idle 64 KiB fifos hold: contiguous, chunked never written, and
 * chunked after 40 KB went through each: right after the drain (the reader's spare chunks still
 * held) and once the reader waited on the empty fifo (given back).
 */
function idleMemory(): { contiguous: number; chunked: number; chunkedDrained: number; chunkedWaited: number } {
  // A fresh segment for each (freed chunks of one size class do not serve another).
  const measure = (options: FifoOptions | undefined, traffic: "none" | "drained" | "waited") => {
    using sm = new SegmentMain();
    const segment = sm.create({ type: "private", name: "idle-memory", size: 80 * MiB });
    const held = () => {
      const m = segment.memoryStatus();
      return m.size - m.free - m.cached;
    };
    const base = held();
    const fifos = Array.from({ length: 1000 }, () => segment.allocFifo(65536, "rx", options)!);
    if (traffic !== "none") {
      const data = new Uint8Array(40_000);
      for (const f of fifos) {
        if (f.enqueue(data) !== data.length || f.dequeue(data) !== data.length) throw new Error("no room");
        if (traffic === "waited") f.waitForDataSync({ timeoutMs: 0 });
      }
    }
    return held() - base;
  };
  return {
    contiguous: measure(undefined, "drained"),
    chunked: measure({ chunked: true }, "none"),
    chunkedDrained: measure({ chunked: true }, "drained"),
    chunkedWaited: measure({ chunked: true }, "waited"),
  };
}

/** Keeps the better of a row already recorded and a new measurement. */
function record(row: Row, better: (a: Row, b: Row) => boolean): void {
  const i = rows.findIndex((r) =>
    r.kind === row.kind && r.producer === row.producer && r.consumer === row.consumer && r.size === row.size
  );
  if (i < 0) rows.push(row);
  else if (better(row, rows[i])) rows[i] = row;
}
/** A kernel-path row from a reader's result. */
function kernelRow(kind: "uds" | "pipe", runtime: Runtime, size: number, got: Result, count: number): Row {
  return {
    kind,
    producer: runtime,
    consumer: runtime,
    size,
    gbps: got.bytes / got.seconds / 1e9,
    mops: count / got.seconds / 1e6,
  };
}
const faster = (a: Row, b: Row) => (a.gbps ?? a.mops ?? 0) > (b.gbps ?? b.mops ?? 0);
const quicker = (a: Row, b: Row) => a.meanNs! < b.meanNs!;

for (let rep = 0; rep < reps; rep++) {
  log(`rep ${rep + 1} of ${reps}`);
  for (const size of SIZES) {
    const count = Math.floor(STREAM_BYTES[size] / size);
    // The first quarter is not timed: the runtimes' compilers share the two CPUs the sides poll on.
    const warm = Math.floor(count / 4) * size;
    const c = cDir ? runC("shm_ring", "stream", size, (STREAM_BYTES[size] * 4) / MiB) : undefined;
    let top = 0;
    for (const [producer, consumer] of PAIRS) {
      const [, got] = await fifoCase(producer, consumer, ["fifo-produce", "fifo-consume"], MiB, [size, count, warm]);
      if (got.total !== size * count) throw new Error(`fifo ${size}: got ${got.total} of ${size * count} bytes`);
      const gbps = got.bytes / got.seconds / 1e9;
      top = Math.max(top, gbps);
      record({ kind: "fifo", producer, consumer, size, gbps, mops: got.bytes / size / got.seconds / 1e6 }, faster);
      log(`  fifo ${producer}->${consumer} ${size} B: ${gbps.toFixed(2)} GB/s${c ? ` (C ${c["GB/s"]} GB/s)` : ""}`);
      if (size !== 65536) continue;
      // The same stream through a chunked fifo (memory taken and given back chunk by chunk),
      // right after the contiguous one: the ratio of the two is taken within the rep.
      // Default chunks (VPP's rule: an eighth of the size, at most 64 KiB), then 256 KiB ones.
      for (const [kind, chunkSize] of [["fifo-chunked", undefined], ["fifo-chunked-256k", 256 * 1024]] as const) {
        const [, chunked] = await fifoCase(
          producer,
          consumer,
          ["fifo-produce", "fifo-consume"],
          MiB,
          [size, count, warm],
          false,
          {
            chunked: true,
            chunkSize,
          },
        );
        if (chunked.total !== size * count) {
          throw new Error(`chunked fifo: got ${chunked.total} of ${size * count} bytes`);
        }
        const chunkedGbps = chunked.bytes / chunked.seconds / 1e9;
        record({ kind, producer, consumer, size, gbps: chunkedGbps }, faster);
        (vsContiguous[`${kind}-${producer}-${consumer}`] ??= []).push(chunkedGbps / gbps);
        log(
          `  ${kind} ${producer}->${consumer} ${size} B: ${chunkedGbps.toFixed(2)} GB/s (${
            (chunkedGbps / gbps).toFixed(2)
          }x)`,
        );
      }
    }
    if (c) (vsC[`fifo-${size}`] ??= []).push(top / c["GB/s"]);
  }
  {
    const c = cDir ? runC("shm_ring", "msg", 64, (MESSAGES * 64 * 4) / MiB) : undefined;
    let top = 0;
    for (const [producer, consumer] of PAIRS) {
      const [, got] = await fifoCase(producer, consumer, ["msg-produce", "msg-consume"], MiB, [64, MESSAGES]);
      const mops = got.messages / got.seconds / 1e6;
      top = Math.max(top, mops);
      record({ kind: "msg", producer, consumer, size: 64, mops }, faster);
      log(`  msg ${producer}->${consumer} 64 B: ${mops.toFixed(2)} M/s${c ? ` (C ${c["Mmsg/s"]})` : ""}`);
    }
    if (c) (vsC["msg-64"] ??= []).push(top / c["Mmsg/s"]);
  }
  {
    // The message ring: the same 64 B records, published in batches, polled in place.
    const cRing = () => runC("shm_ring", "msg", 64, (RING_MESSAGES * 64) / MiB);
    const c = cDir ? cRing() : undefined;
    let top = 0;
    for (const [producer, consumer] of PAIRS) {
      const [, got] = await ringCase(
        producer,
        consumer,
        ["ring-produce", "ring-consume"],
        ([ring]) => [[ring, RING_MESSAGES, 64], [ring, RING_MESSAGES, 64]],
        1,
      );
      const mops = got.messages / got.seconds / 1e6;
      top = Math.max(top, mops);
      record({ kind: "ring", producer, consumer, size: 64, mops }, faster);
      log(`  ring ${producer}->${consumer} 64 B: ${mops.toFixed(2)} M/s${c ? ` (C ${c["Mmsg/s"]})` : ""}`);
      if (c && producer === consumer) {
        // A runtime's own ratio against a C run right after it (the machine drifts within a case).
        (vsC[`ring-64-${producer}`] ??= []).push(mops / cRing()["Mmsg/s"]);
      }
    }
    if (c) (vsC["ring-64"] ??= []).push(top / c["Mmsg/s"]);
  }
  {
    const cPingpong = () => runC("pingpong", "ring", ROUNDS);
    const c = cDir ? cPingpong() : undefined;
    let top = Infinity;
    for (const [producer, consumer] of PAIRS) {
      const [rtt] = await ringCase(
        producer,
        consumer,
        ["ring-ping", "ring-echo"],
        ([a, b]) => [[a, ROUNDS, b], [a, ROUNDS, b]],
        2,
      );
      top = Math.min(top, rtt.meanNs);
      record({ kind: "ring-rtt", producer, consumer, size: 64, ...rtt }, quicker);
      log(
        `  ring round trip ${producer}<->${consumer}: mean ${rtt.meanNs.toFixed(0)} ns${
          c ? ` (C ${c.mean_rtt_ns})` : ""
        }`,
      );
      if (c && producer === consumer) {
        (vsC[`ring-rtt-${producer}`] ??= []).push(rtt.meanNs / cPingpong().mean_rtt_ns);
      }
    }
    if (c) (vsC["ring-rtt"] ??= []).push(top / c.mean_rtt_ns);
    // The language's floor beside it: the C exchange itself in plain JavaScript (fifo_cases.ts,
    // floorPing), in the record area of a ring nobody uses as one (a fresh segment's memory is zero).
    for (const runtime of RUNTIMES) {
      const [rtt] = await ringCase(runtime, runtime, ["floor-ping", "floor-echo"], ([ring]) => [
        [ring, ROUNDS],
        [ring, ROUNDS],
      ], 1);
      record({ kind: "floor-rtt", producer: runtime, consumer: runtime, size: 64, ...rtt }, quicker);
      log(`  floor round trip ${runtime}: mean ${rtt.meanNs.toFixed(0)} ns${c ? ` (C ${c.mean_rtt_ns})` : ""}`);
      if (c) (vsC[`floor-rtt-${runtime}`] ??= []).push(rtt.meanNs / cPingpong().mean_rtt_ns);
    }
  }
  {
    const c = cDir ? runC("pingpong", "ring", ROUNDS) : undefined;
    let top = Infinity;
    for (const [producer, consumer] of PAIRS) {
      const [rtt] = await fifoCase(producer, consumer, ["ping", "echo"], 64 * 1024, [ROUNDS], true);
      top = Math.min(top, rtt.meanNs);
      record({ kind: "pingpong", producer, consumer, size: 64, ...rtt }, quicker);
      log(`  pingpong ${producer}<->${consumer}: mean ${rtt.meanNs.toFixed(0)} ns${c ? ` (C ${c.mean_rtt_ns})` : ""}`);
    }
    if (c) (vsC["pingpong"] ??= []).push(top / c.mean_rtt_ns);
  }
  for (const [producer, consumer] of PAIRS) {
    if (producer === consumer) continue; // below, beside their anchor
    const [rtt] = await fifoCase(producer, consumer, ["ping-sleep", "echo-sleep"], 64 * 1024, [SLEEPING_ROUNDS], true);
    record({ kind: "wakeup", producer, consumer, size: 64, ...rtt }, quicker);
    log(`  sleeping round trip ${producer}<->${consumer}: p50 ${(rtt.p50Ns / 1000).toFixed(1)} us`);
  }
  for (const runtime of RUNTIMES) {
    // The sleeping round trip of one runtime and its anchor, the same 64 B exchange over a Unix
    // socket (node:net), in alternating parts: the machine's speed drifts by tens of percent
    // within a minute here, so each ratio compares two measurements taken seconds apart. First
    // with each process pinned to its CPU, as every case here, then with neither pinned, as a
    // service runs (where the scheduler may put the woken process on the waker's CPU).
    const rounds = Math.max(100, Math.floor(SLEEPING_ROUNDS / INTERLEAVE));
    for (const pinned of [true, false]) {
      for (let part = 0; part < INTERLEAVE; part++) {
        const [rtt] = await fifoCase(
          runtime,
          runtime,
          ["ping-sleep", "echo-sleep"],
          64 * 1024,
          [rounds],
          true,
          {},
          pinned,
        );
        const path = `${tmpdir()}/svmbench-${process.pid}-${runtime}-rtt.sock`;
        try {
          const server = start(runtime, pinned ? 1 : null, "uds-echo", path, rounds);
          await server.ready;
          const sock = await start(runtime, pinned ? 0 : null, "uds-ping", path, rounds).result;
          await server.result;
          const [kind, udsKind, ratios] = pinned
            ? ["wakeup", "uds-rtt", vsSocket] as const
            : ["wakeup-free", "uds-rtt-free", vsSocketFree] as const;
          record({ kind, producer: runtime, consumer: runtime, size: 64, ...rtt }, quicker);
          record({ kind: udsKind, producer: runtime, consumer: runtime, size: 64, ...sock }, quicker);
          (ratios[runtime] ??= []).push(rtt.p50Ns / sock.p50Ns);
          const us = (ns: number) => (ns / 1000).toFixed(1);
          const how = pinned ? "" : ", not pinned";
          log(`  sleeping round trip ${runtime}${how}: p50 ${us(rtt.p50Ns)} us, Unix socket ${us(sock.p50Ns)} us`);
        } finally {
          rmSync(path, { force: true });
        }
      }
    }
  }
  for (const runtime of RUNTIMES) {
    // A server's loop over CLIENTS clients, in alternating parts as above: a WaitSet, waitAny
    // over all of them, and node:net with as many connections.
    for (let part = 0; part < INTERLEAVE; part++) {
      const set = await serverCase(runtime, "server-set", SERVER_ROUNDS);
      const any = await serverCase(runtime, "server-any", SERVER_ANY_ROUNDS);
      const path = `${tmpdir()}/svmbench-${process.pid}-${runtime}-server.sock`;
      try {
        const server = start(runtime, 1, "uds-serve", path, SERVER_ROUNDS);
        await server.ready;
        const sock = await start(runtime, 0, "uds-clients", path, CLIENTS, SERVER_ROUNDS).result;
        await server.result;
        record({ kind: "server-set", producer: runtime, consumer: runtime, size: 64, ...set }, quicker);
        record({ kind: "server-any", producer: runtime, consumer: runtime, size: 64, ...any }, quicker);
        record({ kind: "uds-server", producer: runtime, consumer: runtime, size: 64, ...sock }, quicker);
        (vsServerSocket[runtime] ??= []).push(set.p50Ns! / sock.p50Ns!);
        const us = (ns: number) => (ns / 1000).toFixed(1);
        log(
          `  server of ${CLIENTS} clients ${runtime}: p50 WaitSet ${us(set.p50Ns!)} us, waitAny ${
            us(any.p50Ns!)
          } us, ` +
            `Unix sockets ${us(sock.p50Ns!)} us`,
        );
      } finally {
        rmSync(path, { force: true });
      }
    }
  }
  {
    const size = 65536;
    const count = Math.floor(STREAM_BYTES[size] / size);
    for (const [producer, consumer] of PAIRS) {
      const [, got] = await fifoCase(producer, consumer, ["sleep-produce", "sleep-consume"], MiB, [size, count]);
      if (got.bytes !== size * count) throw new Error(`sleeping fifo: got ${got.bytes} of ${size * count} bytes`);
      const gbps = got.bytes / got.seconds / 1e9;
      record({ kind: "fifo-sleep", producer, consumer, size, gbps, mops: count / got.seconds / 1e6 }, faster);
      log(`  sleeping stream ${producer}->${consumer} ${size} B: ${gbps.toFixed(2)} GB/s`);
    }
  }
  for (const runtime of RUNTIMES) {
    const [idle] = await fifoCase(runtime, runtime, ["idle", "idle"], 4096, [IDLE_FIRST_MS, IDLE_MS]);
    record(
      { kind: "idle", producer: runtime, consumer: runtime, size: 0, cpuMs: idle.cpuMs, meanNs: idle.cpuMs },
      (a, b) => a.cpuMs! < b.cpuMs!,
    );
  }
  for (const runtime of RUNTIMES) {
    for (const size of SIZES) {
      const count = KERNEL_WRITES[size];
      const path = `${tmpdir()}/svmbench-${process.pid}-${runtime}-${size}.sock`;
      const reader = start(runtime, 1, "socket-read", path);
      await reader.ready;
      const [got] = await Promise.all([reader.result, start(runtime, 0, "socket-write", path, size, count).result]);
      rmSync(path, { force: true });
      if (got.bytes !== size * count) throw new Error(`uds ${size}: got ${got.bytes} of ${size * count}`);
      record(kernelRow("uds", runtime, size, got, count), faster);
      const piped = await start(runtime, 1, "pipe-read", size, count).result;
      if (piped.bytes !== size * count) throw new Error(`pipe ${size}: got ${piped.bytes} of ${size * count}`);
      record(kernelRow("pipe", runtime, size, piped, count), faster);
    }
  }
}
if (cDir) rmSync(cDir, { recursive: true, force: true });

const find = (kind: Row["kind"], producer: Runtime, consumer: Runtime, size: number) =>
  rows.find((r) => r.kind === kind && r.producer === producer && r.consumer === consumer && r.size === size);
const fmt = (v: number | undefined, digits = 2) => (v === undefined ? "-" : v.toFixed(digits));
const ratio = (v: number | undefined, suffix = "x") => (v === undefined ? "-" : `${v.toFixed(2)}${suffix}`);
const pairCells = (kind: Row["kind"], size: number, cell: (r: Row) => string) =>
  PAIRS.map(([p, c]) => {
    const r = find(kind, p, c, size);
    return r ? cell(r) : "-";
  }).join(" | ");
const serverLines: string[] = [];
const lines: string[] = [
  "| case | " + PAIRS.map(([p, c]) => `${p}→${c}`).join(" | ") +
  " | vs Unix socket, same runtime | vs C (median of paired reps) |",
  "|" + " --- |".repeat(PAIRS.length + 3),
];
for (const size of SIZES) {
  const uds = RUNTIMES.map((rt) =>
    `${rt} ${(find("fifo", rt, rt, size)!.gbps! / find("uds", rt, rt, size)!.gbps!).toFixed(1)}x`
  );
  lines.push(
    `| stream, ${size} B writes (GB/s) | ${pairCells("fifo", size, (r) => fmt(r.gbps))} | ${uds.join(", ")} | ${
      ratio(median(vsC[`fifo-${size}`]))
    } |`,
  );
}
{
  const uds = RUNTIMES.map((rt) =>
    `${rt} ${(find("msg", rt, rt, 64)!.mops! / find("uds", rt, rt, 64)!.mops!).toFixed(1)}x`
  );
  lines.push(
    `| framed 64 B messages (M/s) | ${pairCells("msg", 64, (r) => fmt(r.mops))} | ${uds.join(", ")} | ${
      ratio(median(vsC["msg-64"]))
    } |`,
  );
}
{
  const uds = RUNTIMES.map((rt) =>
    `${rt} ${(find("ring", rt, rt, 64)!.mops! / find("uds", rt, rt, 64)!.mops!).toFixed(1)}x`
  );
  const perRuntime = RUNTIMES.map((rt) => `${rt} ${ratio(median(vsC[`ring-64-${rt}`]))}`);
  lines.push(
    `| message ring, 64 B records (M/s) | ${pairCells("ring", 64, (r) => fmt(r.mops))} | ${uds.join(", ")} | ${
      ratio(median(vsC["ring-64"]))
    } (same runtime: ${perRuntime.join(", ")}) |`,
  );
}
for (const [kind, what] of [["fifo-chunked", "64 KiB chunks"], ["fifo-chunked-256k", "256 KiB chunks"]] as const) {
  const cells = PAIRS.map(([p, c]) => {
    const r = find(kind, p, c, 65536);
    return r ? fmt(r.gbps) : "-";
  });
  const ratios = PAIRS.map(([p, c]) => `${p}→${c} ${ratio(median(vsContiguous[`${kind}-${p}-${c}`]))}`);
  lines.push(
    `| stream, 64 KiB writes, chunked 1 MiB fifo, ${what} (GB/s) | ${cells.join(" | ")} | vs the contiguous fifo, ` +
      `same pair, median of reps: ${ratios.join(", ")} | - |`,
  );
}
const times = (r: Row) => `${fmt(r.meanNs! / 1000)} (p50 ${fmt(r.p50Ns! / 1000)}, p99 ${fmt(r.p99Ns! / 1000)})`;
lines.push(
  `| round trip 64 B, polling (us) | ${pairCells("pingpong", 64, times)} | - | ${
    ratio(median(vsC["pingpong"]), "x the C time")
  } |`,
  `| round trip 64 B through two message rings, polling (us) | ${
    pairCells("ring-rtt", 64, (r) => fmt(r.meanNs! / 1000))
  } | - | ${ratio(median(vsC["ring-rtt"]), "x the C time")} (same runtime: ${
    RUNTIMES.map((rt) => `${rt} ${ratio(median(vsC[`ring-rtt-${rt}`]))}`).join(", ")
  }) |`,
  `| the same round trip, C's ring exchange in plain JavaScript: the language's floor (us) | ${
    pairCells("floor-rtt", 64, (r) => fmt(r.meanNs! / 1000))
  } | - | ${RUNTIMES.map((rt) => `${rt} ${ratio(median(vsC[`floor-rtt-${rt}`]))}`).join(", ")} the C time |`,
);
{
  const bySocket = (kind: Row["kind"], udsKind: Row["kind"], ratios: Record<string, number[]>) =>
    RUNTIMES.map((rt) => {
      const fifo = find(kind, rt, rt, 64);
      const sock = find(udsKind, rt, rt, 64);
      const paired = [...(ratios[rt] ?? [])].sort((a, b) => a - b);
      return fifo && sock && paired.length > 0
        ? `${rt} p50 ${ratio(median(paired))} (median of ${paired.length} alternating parts, ${
          paired[0].toFixed(2)
        }x to ${paired[paired.length - 1].toFixed(2)}x)`
        : `${rt} -`;
    }).join("; ");
  lines.push(
    `| round trip 64 B, both sides asleep between messages (us) | ${pairCells("wakeup", 64, times)} | ${
      bySocket("wakeup", "uds-rtt", vsSocket)
    } (time: lower is better) | - |`,
    `| the same, neither process pinned (us) | ${pairCells("wakeup-free", 64, times)} | ${
      bySocket("wakeup-free", "uds-rtt-free", vsSocketFree)
    } (time: lower is better) | - |`,
  );
  const streams = RUNTIMES.map((rt) => {
    const fifo = find("fifo-sleep", rt, rt, 65536);
    const sock = find("uds", rt, rt, 65536);
    return fifo && sock ? `${rt} ${(fifo.gbps! / sock.gbps!).toFixed(1)}x` : `${rt} -`;
  });
  lines.push(
    `| stream, 64 KiB writes, both sides sleeping in the waits (GB/s) | ${
      pairCells("fifo-sleep", 65536, (r) => fmt(r.gbps))
    } | ${streams.join(", ")} | - |`,
  );
}
{
  const cells = (kind: Row["kind"]) =>
    RUNTIMES.map((rt) => {
      const r = find(kind, rt, rt, 64);
      return r ? times(r) : "-";
    }).join(" | ");
  const paired = RUNTIMES.map((rt) => {
    const xs = [...(vsServerSocket[rt] ?? [])].sort((a, b) => a - b);
    return xs.length > 0 ? `${ratio(median(xs))} (${xs[0].toFixed(2)}x to ${xs[xs.length - 1].toFixed(2)}x)` : "-";
  });
  serverLines.push(
    "",
    `| a server's ${CLIENTS} clients: 64 B round trip through a random one, both sides asleep (us) | ${
      RUNTIMES.join(" | ")
    } |`,
    `|${" --- |".repeat(RUNTIMES.length + 1)}`,
    `| server in \`WaitSet.wait()\` over its clients' fifos | ${cells("server-set")} |`,
    `| server in \`waitAny()\` over all of them | ${cells("server-any")} |`,
    `| node:net server, ${CLIENTS} Unix socket connections (the anchor) | ${cells("uds-server")} |`,
    `| WaitSet p50 over the sockets', median of ${INTERLEAVE} alternating parts | ${paired.join(" | ")} |`,
  );
}
lines.push(
  `| CPU per second while asleep ${IDLE_MS} ms on an empty fifo, after a first wait of ${IDLE_FIRST_MS} ms (ms) | ${
    pairCells("idle", 0, (r) => fmt(r.cpuMs, 1))
  } | - | - |`,
  "",
  `| kernel path, same runtime (GB/s) | ${RUNTIMES.join(" | ")} |`,
  `|${" --- |".repeat(RUNTIMES.length + 1)}`,
  `| Unix socket round trip 64 B, node:net (us) | ${
    RUNTIMES.map((rt) => {
      const r = find("uds-rtt", rt, rt, 64);
      return r ? times(r) : "-";
    }).join(" | ")
  } |`,
);
for (const kind of ["uds", "pipe"] as const) {
  for (const size of SIZES) {
    lines.push(
      `| ${kind === "uds" ? "Unix socket" : "pipe"}, ${size} B writes | ${
        RUNTIMES.map((rt) => fmt(find(kind, rt, rt, size)?.gbps, 3)).join(" | ")
      } |`,
    );
  }
}
{
  const m = idleMemory();
  lines.push(
    "",
    "| 1000 idle fifos of 64 KiB, segment memory held (MiB) | contiguous | chunked, never written | " +
      "chunked, 40 KB through each, just drained | the same once each reader waited |",
    "| --- | --- | --- | --- | --- |",
    `| | ${fmt(m.contiguous / MiB)} | ${fmt(m.chunked / MiB)} | ${fmt(m.chunkedDrained / MiB)} | ${
      fmt(m.chunkedWaited / MiB)
    } |`,
  );
}
const table = [...lines, ...serverLines].join("\n");
console.log(table);
const denoVersion = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
const results = {
  date: new Date().toISOString(),
  quick,
  reps,
  pinned: pin,
  machine: {
    cores: cpus().length,
    note: "a VM: a system call costs about 1 us, which flatters the fifo against sockets and pipes",
  },
  orchestrator: "Bun" in globalThis
    ? `bun ${process.versions.bun}`
    : denoVersion
    ? `deno ${denoVersion}`
    : `node ${process.versions.node}`,
  rows,
  vsC,
  vsSocket,
  vsSocketFree,
  vsServerSocket,
  table,
};
mkdirSync(outDir, { recursive: true });
const stem = quick ? "quick" : "latest";
writeFileSync(`${outDir}/${stem}.json`, JSON.stringify(results, null, 2) + "\n");
writeFileSync(`${outDir}/${quick ? "quick" : "throughput"}.svg`, throughputChart(rows, SIZES));
done();
