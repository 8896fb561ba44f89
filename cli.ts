/**
 * Command-line entry.
 *
 *   cli.ts demo [--size MiB] [--message BYTES] [--type shm|memfd] [--peer deno|bun]
 *       Creates a segment with an rx/tx fifo pair, starts a peer in the other runtime that
 *       attaches and echoes everything back, streams patterned data through it, checks every
 *       echoed byte, and prints throughput, round-trip latency and the segment.
 *   cli.ts show [--clean]
 *       Lists this library's segments in /dev/shm; --clean removes those whose creator is dead.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Fifo, formatBytes, OsError, type Segment, SegmentError, SegmentMain } from "./mod.ts";

type Runtime = "deno" | "bun" | "node";
const RUNTIME: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const VERSIONS = process.versions as Record<string, string | undefined>;

/** A wrong command line: reported in one line on stderr, exit code 2. */
class UsageError extends Error {}

const USAGE = {
  demo: "usage: cli.ts demo [--size MiB] [--message BYTES] [--type shm|memfd] [--peer deno|bun|node]",
  show: "usage: cli.ts show [--clean]",
} as const;

/** Strict parsing: an unknown option or a missing value is a UsageError; `--help` is always known. */
function parse<T extends Record<string, { type: "string" | "boolean" }>>(
  args: string[],
  options: T,
): { [K in keyof T]?: T[K]["type"] extends "string" ? string : boolean } & { help?: boolean } {
  try {
    return parseArgs({ args, options: { ...options, help: { type: "boolean" } }, strict: true }).values as never;
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]);
  }
}

/** Set by SIGINT or SIGTERM; the demo's loops look at it between slices of work. */
let interrupted: string | undefined;

/** Lets the event loop run (signal handlers, child exits) about once a millisecond of busy work. */
let lastYield = 0;
async function breathe(): Promise<void> {
  const t = performance.now();
  if (t - lastYield < 1) return;
  lastYield = t;
  await new Promise((r) => setImmediate(r)); // a turn of the event loop, without a timer's delay
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
}

function now(): number {
  return performance.now();
}

function runtimeCommand(runtime: Runtime, script: string, args: string[]): [string, string[]] {
  const root = fileURLToPath(new URL(".", import.meta.url));
  const local = `${root}node_modules/.bin/${runtime}`;
  const bin = existsSync(local) ? local : runtime; // the project's own install, else PATH
  if (runtime === "deno") return [bin, ["run", "-A", "--quiet", script, ...args]];
  if (runtime === "node") return [bin, ["--no-warnings", script, ...args]];
  return [bin, [script, ...args]];
}

/** Period of the demo's byte pattern: prime, so it never lines up with the ring or a write. */
const PERIOD = 1_000_003;

/**
 * The pattern as a table: the byte at stream position p is `table[p % PERIOD]`, and the table
 * runs on far enough that any write or read of up to `longest` bytes is one slice of it.
 */
function patternTable(longest: number): Uint8Array {
  const table = new Uint8Array(PERIOD + longest + 4);
  for (let i = 0; i < table.length; i++) table[i] = Math.imul(i % PERIOD, 0x9e3779b1) >>> 24;
  return table;
}

/** Checks `n` echoed bytes against the pattern from stream position `at`, a word at a time. */
function checkEcho(got: DataView, n: number, table: DataView, at: number): void {
  const base = at % PERIOD;
  let i = 0;
  for (; i + 4 <= n; i += 4) if (got.getInt32(i) !== table.getInt32(base + i)) break;
  for (; i < n; i++) {
    if (got.getUint8(i) !== table.getUint8(base + i)) {
      throw new Error(`echoed byte ${at + i} is ${got.getUint8(i)}, expected ${table.getUint8(base + i)}`);
    }
  }
}

function progress(done: number, total: number, startMs: number, tty: boolean, last: { pct: number }): void {
  const pct = Math.floor((done / total) * 100);
  if (pct === last.pct) return;
  last.pct = pct;
  const rate = done / ((now() - startMs) / 1000) / 1e9;
  if (tty) {
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    const bar = "#".repeat(fill) + ".".repeat(width - fill);
    process.stdout.write(`\r  [${bar}] ${String(pct).padStart(3)}%  ${rate.toFixed(2)} GB/s`);
    if (pct === 100) process.stdout.write("\n");
  } else if (pct % 25 === 0) {
    console.log(`  ${pct}% streamed, ${rate.toFixed(2)} GB/s`);
  }
}

async function demo(args: string[]): Promise<void> {
  const values = parse(args, {
    size: { type: "string" },
    message: { type: "string" },
    type: { type: "string" },
    peer: { type: "string" },
  });
  if (values.help) {
    console.log(USAGE.demo);
    return;
  }
  const totalBytes = Math.round(Number(values.size ?? "256") * 1024 * 1024);
  const messageBytes = Number(values.message ?? "65536");
  const type = (values.type ?? "shm") as "shm" | "memfd";
  const peerRuntime = (values.peer ?? (RUNTIME === "deno" ? "bun" : "deno")) as Runtime;
  if (!(totalBytes > 0)) throw new UsageError(`--size must be a number of MiB above 0, got ${values.size}`);
  if (!Number.isInteger(messageBytes) || messageBytes < 1 || messageBytes > 1 << 20) {
    throw new UsageError(`--message must be a whole number of bytes from 1 to 1048576, got ${values.message}`);
  }
  if (type !== "shm" && type !== "memfd") throw new UsageError(`--type must be shm or memfd, got ${type}`);
  if (peerRuntime !== "deno" && peerRuntime !== "bun" && peerRuntime !== "node") {
    throw new UsageError(`--peer must be deno, bun or node, got ${peerRuntime}`);
  }

  using sm = new SegmentMain();
  const name = `svm-demo-${process.pid}`;
  const segment = sm.create({ type, name, size: 8 << 20 });
  const rx = segment.allocFifo(1 << 20, "rx")!; // the peer reads this
  const tx = segment.allocFifo(1 << 20, "tx")!; // the peer writes this
  const where = type === "shm" ? name : `${process.pid}:${segment.info().fd}`;
  console.log(
    `${RUNTIME} ${VERSIONS[RUNTIME]}: segment ${name} (${type}),` +
      ` echo peer in ${peerRuntime}`,
  );
  const [bin, argv] = runtimeCommand(peerRuntime, fileURLToPath(import.meta.url), [
    "echo-peer",
    type,
    where,
    String(rx.offset),
    String(tx.offset),
  ]);
  const child = spawn(bin, argv, { stdio: ["ignore", "inherit", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await new Promise((r) => setTimeout(r, 0));
    const peerGone = () => !sm.os.processAlive(child.pid!) || child.exitCode !== null;
    const waitFor = async (cond: () => boolean, what: string) => {
      let spins = 0;
      while (!cond()) {
        if (++spins % 4096 === 0 && peerGone()) throw new Error(`the echo peer exited while ${what}`);
        await breathe();
      }
    };
    // The peer says hello by setting the tx fifo's tag once attached.
    const deadline = now() + 20_000;
    await waitFor(() => tx.tag === 1 || now() > deadline, "starting");
    if (tx.tag !== 1) throw new Error("the echo peer did not attach within 20 s");

    // Throughput: stream totalBytes out through rx, read the echo back from tx, check it all.
    const table = patternTable(Math.max(messageBytes, 65536));
    const tableView = new DataView(table.buffer);
    const back = new Uint8Array(Math.max(messageBytes, 65536));
    const backView = new DataView(back.buffer);
    let sent = 0;
    let received = 0;
    const start = now();
    const tty = Boolean(process.stdout.isTTY);
    const last = { pct: -1 };
    let idle = 0;
    while (received < totalBytes) {
      if (sent < totalBytes) {
        const n = Math.min(messageBytes - (sent % messageBytes), totalBytes - sent);
        const at = sent % PERIOD;
        sent += rx.enqueue(table.subarray(at, at + n));
      }
      const got = tx.dequeue(back);
      checkEcho(backView, got, tableView, received);
      received += got;
      if (got === 0 && ++idle % 65536 === 0 && peerGone()) throw new Error("the echo peer exited mid-stream");
      progress(received, totalBytes, start, tty, last);
      await breathe();
    }
    const seconds = (now() - start) / 1000;

    // Latency: 64-byte messages, one at a time, timed round trip.
    const ping = new Uint8Array(64);
    const pong = new Uint8Array(64);
    const rounds = 20_000;
    const samples = new Float64Array(rounds);
    for (let r = 0; r < rounds + 1000; r++) {
      ping[0] = r & 0xff;
      const t0 = now();
      while (rx.enqueue(ping) === 0);
      let have = 0;
      let spins = 0;
      while (have < 64) {
        have += tx.dequeue(have === 0 ? pong : pong.subarray(have));
        if (++spins % 100_000 === 0 && peerGone()) throw new Error("the echo peer exited during the latency run");
      }
      await breathe();
      if (pong[0] !== (r & 0xff)) throw new Error(`round trip ${r} came back wrong`);
      if (r >= 1000) samples[r - 1000] = now() - t0;
    }
    samples.sort();
    const mean = samples.reduce((a, b) => a + b, 0) / rounds;
    rx.tag = 2; // tell the peer to stop
    const code = await exited;
    if (code !== 0) throw new Error(`the echo peer exited with code ${code}`);
    console.log(`streamed ${formatBytes(totalBytes)} in ${messageBytes}-byte writes, every echoed byte checked`);
    console.log(`  throughput  ${(totalBytes / seconds / 1e9).toFixed(2)} GB/s each way (${seconds.toFixed(2)} s)`);
    console.log(
      `  round trip  64 B: mean ${(mean * 1000).toFixed(2)} us, p50 ${(samples[rounds >> 1] * 1000).toFixed(2)} us,` +
        ` p99 ${(samples[Math.floor(rounds * 0.99)] * 1000).toFixed(2)} us`,
    );
    console.log(segment.toString());
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

function echoPeer(args: string[]): void {
  const [type, where, rxOffset, txOffset] = args;
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  const segment: Segment = type === "memfd"
    ? sm.attach({ type: "memfd", pid: Number(where.split(":")[0]), fd: Number(where.split(":")[1]) })
    : sm.attach({ type: "shm", name: where });
  const rx: Fifo = segment.fifoAt(Number(rxOffset));
  const tx: Fifo = segment.fifoAt(Number(txOffset));
  const buf = new Uint8Array(1 << 16);
  tx.tag = 1;
  let pending = 0; // bytes in buf not yet echoed
  let at = 0;
  let spins = 0;
  const parent = process.ppid;
  while (rx.tag !== 2) {
    if (pending === 0) {
      pending = rx.dequeue(buf);
      at = 0;
    }
    if (pending > 0) {
      const wrote = tx.enqueue(at === 0 && pending === buf.length ? buf : buf.subarray(at, at + pending));
      at += wrote;
      pending -= wrote;
    } else if (++spins % (1 << 20) === 0 && !sm.os.processAlive(parent)) {
      return; // the demo is gone
    }
  }
}

function show(args: string[]): void {
  const values = parse(args, { clean: { type: "boolean" } });
  if (values.help) {
    console.log(USAGE.show);
    return;
  }
  const clean = values.clean === true;
  using sm = new SegmentMain({ timeoutSeconds: 0 });
  let names: string[] = [];
  try {
    names = readdirSync("/dev/shm");
  } catch {
    console.log("no /dev/shm on this machine");
    return;
  }
  let shown = 0;
  for (const name of names.sort()) {
    let segment: Segment;
    try {
      segment = sm.attach({ type: "shm", name });
    } catch (error) {
      if (error instanceof SegmentError && error.code === "abandoned") {
        // Its creator died before it was ready: nobody can ever attach to it.
        shown++;
        console.log(`${name}: abandoned (its creator died before it was ready)`);
        if (clean) {
          sm.os.shmUnlink(`/${name}`);
          console.log(`  removed`);
        }
        continue;
      }
      if (error instanceof SegmentError && error.code !== "bad-magic" && error.code !== "not-a-file") {
        shown++;
        console.log(`${name}: cannot attach (${error.code}): ${error.message}`);
        continue;
      }
      if (error instanceof SegmentError || error instanceof OsError) continue; // not ours, or unreadable
      throw error;
    }
    shown++;
    const alive = segment.creatorAlive;
    const fifos = segment.fifos();
    console.log(
      `${name}: ${formatBytes(segment.size)}, creator pid ${segment.creatorPid} (${alive ? "alive" : "dead"}),` +
        ` ${fifos.length} fifos`,
    );
    for (const f of fifos) console.log(`  ${f.toString()}`);
    sm.delete(segment);
    if (clean && !alive) {
      sm.os.shmUnlink(`/${name}`);
      console.log(`  removed (its creator is dead)`);
    }
  }
  if (shown === 0) console.log("no segments of this library in /dev/shm");
}

const [command, ...rest] = process.argv.slice(2);
// Ctrl-C or SIGTERM: the demo stops at its next breath and removes what it made.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => (interrupted = signal));
try {
  if (command === "demo") await demo(rest);
  else if (command === "echo-peer") echoPeer(rest);
  else if (command === "show") show(rest);
  else if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(`${USAGE.demo}\n${USAGE.show}`);
  } else {
    throw new UsageError(`unknown command ${JSON.stringify(command)} (commands: demo, show; --help for usage)`);
  }
} catch (error) {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  // 2 for a wrong command line; 128 + the signal's number when interrupted, as shells report it.
  process.exitCode = error instanceof UsageError ? 2 : interrupted ? (interrupted === "SIGTERM" ? 143 : 130) : 1;
}
// Handlers registered for the signals must not keep the process alive once the work is done.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.removeAllListeners(signal);
