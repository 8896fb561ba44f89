#!/usr/bin/env -S node --no-warnings
/**
 * Command-line entry.
 *
 *   cli.ts demo [--size MiB] [--message BYTES] [--peer deno|bun|node] [--name NAME] [--spin]
 *       Connects by name to an echo server (one it starts in the other runtime, or with --name
 *       one started on its own, before or after), streams patterned data through the
 *       connection while sleeping in the waits (--spin: polling), checks every echoed byte, and
 *       prints throughput, round-trip latency and the connection's segment.
 *   cli.ts echo NAME [--once] [--spin]
 *       Listens at NAME and echoes each connection's bytes back.
 *   cli.ts show [--clean]
 *       Lists this library's segments in /dev/shm; --clean removes those whose creator is dead.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Fifo, formatBytes, formatMemory, OsError, type Segment, SegmentError, SegmentMain } from "./mod.ts";

type Runtime = "deno" | "bun" | "node";
const RUNTIME: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const VERSIONS = process.versions as Record<string, string | undefined>;

/** A wrong command line: reported in one line on stderr, exit code 2. */
class UsageError extends Error {}

/** How the user ran it: `cli.ts` from a checkout or JSR, `svm-fifo` as the npm package's bin. */
const PROGRAM = import.meta.url.endsWith(".ts") ? "cli.ts" : "svm-fifo";

const USAGE = {
  demo: `usage: ${PROGRAM} demo [--size MiB] [--message BYTES] [--peer deno|bun|node] [--name NAME] [--spin]`,
  echo: `usage: ${PROGRAM} echo NAME [--once] [--spin]`,
  show: `usage: ${PROGRAM} show [--clean]`,
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
async function breathe(signal?: AbortSignal): Promise<void> {
  const t = performance.now();
  if (t - lastYield < 1) return;
  lastYield = t;
  await new Promise((r) => setImmediate(r)); // a turn of the event loop, without a timer's delay
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
  signal?.throwIfAborted(); // what that turn told: the peer gone, say
}

/**
 * `rx.dequeue(into)` (with `exact`, all of `into` or nothing), throwing when it came up short on a
 * fifo the echo peer had closed: a wait for data resolves at once on a closed fifo, so a loop
 * that only waited and read again would never yield. The closed word is read before the fifo.
 */
function readOrEnd(rx: Fifo, into: Uint8Array, exact: boolean): number {
  const closed = rx.isClosed;
  const got = exact ? (rx.dequeueExact(into) ? into.length : 0) : rx.dequeue(into);
  if (got === 0 && closed) throw new Error(CLOSED_EARLY);
  return got;
}
const CLOSED_EARLY = "the echo peer closed the connection mid-stream";

function now(): number {
  return performance.now();
}

/** Where a runtime's binary is: this runtime's own, else the project's install, else a directory of PATH. */
function findRuntime(runtime: Runtime): string | undefined {
  if (runtime === RUNTIME) return process.execPath;
  const dirs: string[] = [];
  if (import.meta.url.startsWith("file:")) {
    // This file's project (cli.ts in a checkout, dist/cli.js in an installed package) and the
    // projects above it, as node_modules/.bin is laid out.
    for (let dir = dirname(fileURLToPath(import.meta.url));; dir = dirname(dir)) {
      dirs.push(`${dir}/node_modules/.bin`);
      if (dirname(dir) === dir) break;
    }
  }
  dirs.push(...(process.env.PATH ?? "").split(":").filter((d) => d !== ""));
  return dirs.map((d) => `${d}/${runtime}`).find((bin) => existsSync(bin));
}

/**
 * The command that runs this CLI under `runtime`: by file when it was run from a file, by URL
 * (Deno only) when it was imported from JSR or a web server.
 */
function runtimeCommand(runtime: Runtime, args: string[]): [string, string[]] {
  const bin = findRuntime(runtime);
  if (bin === undefined) {
    throw new UsageError(`--peer ${runtime}: no ${runtime} binary found (PATH or node_modules/.bin)`);
  }
  const local = import.meta.url.startsWith("file:");
  if (!local && runtime !== "deno") throw new UsageError(`--peer ${runtime}: a CLI run by URL starts only Deno peers`);
  const script = local ? fileURLToPath(import.meta.url) : import.meta.url;
  if (runtime === "deno") return [bin, ["run", "-A", "--quiet", script, ...args]];
  if (runtime === "node") return [bin, ["--no-warnings", script, ...args]];
  return [bin, [script, ...args]];
}

/** The demo's default peer: another runtime where one is installed (and this CLI is a file), else this one. */
function defaultPeer(): Runtime {
  if (!import.meta.url.startsWith("file:")) return "deno";
  const others: Runtime[] = RUNTIME === "deno"
    ? ["bun", "node"]
    : RUNTIME === "bun"
    ? ["deno", "node"]
    : ["deno", "bun"];
  return others.find((r) => findRuntime(r) !== undefined) ?? RUNTIME;
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

/** Aborted by SIGINT or SIGTERM: every wait of the demo and of the echo server ends at once. */
const stop = new AbortController();

async function demo(args: string[]): Promise<void> {
  const values = parse(args, {
    size: { type: "string" },
    message: { type: "string" },
    peer: { type: "string" },
    name: { type: "string" },
    spin: { type: "boolean" },
  });
  if (values.help) {
    console.log(USAGE.demo);
    return;
  }
  const totalBytes = Math.round(Number(values.size ?? "256") * 1024 * 1024);
  const messageBytes = Number(values.message ?? "65536");
  const peerRuntime = (values.peer ?? defaultPeer()) as Runtime;
  if (!(totalBytes > 0)) throw new UsageError(`--size must be a number of MiB above 0, got ${values.size}`);
  if (!Number.isInteger(messageBytes) || messageBytes < 1 || messageBytes > 1 << 20) {
    throw new UsageError(`--message must be a whole number of bytes from 1 to 1048576, got ${values.message}`);
  }
  if (peerRuntime !== "deno" && peerRuntime !== "bun" && peerRuntime !== "node") {
    throw new UsageError(`--peer must be deno, bun or node, got ${peerRuntime}`);
  }
  const spin = values.spin ? SPIN_MICROS : 0;
  using sm = new SegmentMain();
  // With --name, an echo server started on its own (`cli.ts echo NAME`, before or after this);
  // without, one this demo starts in the peer runtime.
  const name = values.name ?? `svm-demo-${process.pid}`;
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null> = Promise.resolve(0);
  if (values.name === undefined) {
    const [bin, argv] = runtimeCommand(peerRuntime, [
      "echo",
      name,
      "--once",
      ...(values.spin ? ["--spin"] : []),
    ]);
    child = spawn(bin, argv, { stdio: ["ignore", "inherit", "inherit"] });
    exited = new Promise((resolve) => child!.on("exit", (code) => resolve(code)));
  }
  console.log(
    `${RUNTIME} ${VERSIONS[RUNTIME]}: connecting to "${name}"` +
      (child ? `, an echo peer in ${peerRuntime}` : "") + (values.spin ? ", polling" : ", sleeping in the waits"),
  );
  try {
    const conn = await sm.connect(name, { timeoutMs: 20_000, signal: stop.signal });
    const { rx, tx } = conn; // tx: we write, the peer reads; rx: the peer writes, we read
    const options = { signal: AbortSignal.any([stop.signal, conn.signal]), spinMicros: spin };
    const failed = (error: unknown): never => {
      if (stop.signal.aborted) throw new Error(`interrupted by ${interrupted}`);
      if (error instanceof SegmentError && error.code === "peer-gone") {
        throw new Error(conn.segment.deleted || !rx.isClosed ? "the echo peer exited mid-stream" : CLOSED_EARLY);
      }
      throw error;
    };

    // Throughput: stream totalBytes out through tx while reading the echo back from rx, each
    // side sleeping in its wait when it cannot move; every echoed byte is checked.
    const table = patternTable(Math.max(messageBytes, 65536));
    const tableView = new DataView(table.buffer);
    const start = now();
    const tty = Boolean(process.stdout.isTTY);
    const last = { pct: -1 };
    const polling = async () => {
      // --spin: one loop that writes what fits and reads what is there, never sleeping.
      const back = new Uint8Array(Math.max(messageBytes, 65536));
      const backView = new DataView(back.buffer);
      for (let sent = 0, received = 0; received < totalBytes;) {
        if (sent < totalBytes) {
          const n = Math.min(messageBytes - (sent % messageBytes), totalBytes - sent);
          const at = sent % PERIOD;
          sent += tx.enqueue(table.subarray(at, at + n));
        }
        const got = readOrEnd(rx, back, false);
        checkEcho(backView, got, tableView, received);
        received += got;
        progress(received, totalBytes, start, tty, last);
        await breathe(options.signal);
      }
    };
    const writer = async () => {
      for (let sent = 0; sent < totalBytes;) {
        const n = Math.min(messageBytes - (sent % messageBytes), totalBytes - sent);
        const at = sent % PERIOD;
        const wrote = tx.enqueue(table.subarray(at, at + n));
        sent += wrote;
        if (wrote < n) await tx.waitForSpace(Math.min(n - wrote, tx.size >> 2), options);
      }
    };
    const reader = async () => {
      const back = new Uint8Array(Math.max(messageBytes, 65536));
      const backView = new DataView(back.buffer);
      for (let received = 0; received < totalBytes;) {
        const got = readOrEnd(rx, back, false);
        checkEcho(backView, got, tableView, received);
        received += got;
        progress(received, totalBytes, start, tty, last);
        if (got === 0) await rx.waitForData(options);
      }
    };
    await (values.spin ? polling() : Promise.all([writer(), reader()])).catch(failed);
    const seconds = (now() - start) / 1000;

    // Latency: 64-byte messages, one at a time, timed round trip.
    const ping = new Uint8Array(64);
    const pong = new Uint8Array(64);
    const rounds = 20_000;
    const samples = new Float64Array(rounds);
    try {
      for (let r = 0; r < rounds + 1000; r++) {
        ping[0] = r & 0xff;
        const t0 = now();
        while (!tx.enqueueExact(ping)) await tx.waitForSpace(64, options);
        while (readOrEnd(rx, pong, true) === 0) await rx.waitForData(options); // --spin: spins in the wait
        if (spin) await breathe(options.signal);
        if (pong[0] !== (r & 0xff)) throw new Error(`round trip ${r} came back wrong`);
        if (r >= 1000) samples[r - 1000] = now() - t0;
      }
    } catch (error) {
      failed(error);
    }
    samples.sort();
    const mean = samples.reduce((a, b) => a + b, 0) / rounds;
    const segment = conn.segment.toString();
    conn.close(); // the echo server sees the end and closes its side
    if ((await exited) !== 0) throw new Error(`the echo peer exited with an error`);
    console.log(`streamed ${formatBytes(totalBytes)} in ${messageBytes}-byte writes, every echoed byte checked`);
    console.log(`  throughput  ${(totalBytes / seconds / 1e9).toFixed(2)} GB/s each way (${seconds.toFixed(2)} s)`);
    console.log(
      `  round trip  64 B: mean ${(mean * 1000).toFixed(2)} us, p50 ${(samples[rounds >> 1] * 1000).toFixed(2)} us,` +
        ` p99 ${(samples[Math.floor(rounds * 0.99)] * 1000).toFixed(2)} us`,
    );
    console.log(segment);
  } catch (error) {
    if (stop.signal.aborted) throw new Error(`interrupted by ${interrupted}`);
    throw error;
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
  }
}

/** Polling instead of parking (`--spin`): each wait spins this long before it would sleep. */
const SPIN_MICROS = 1_000_000;

/**
 * `cli.ts echo NAME [--once] [--spin]`: listens at NAME and echoes every byte of each connection
 * back until the client closes it; --once ends after the first connection.
 */
async function echo(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { once: { type: "boolean" }, spin: { type: "boolean" }, help: { type: "boolean" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE.echo);
    return;
  }
  if (positionals.length !== 1) throw new UsageError(USAGE.echo);
  using sm = new SegmentMain();
  using listener = await sm.listen(positionals[0], { fifoSize: 1 << 20 });
  const spinMicros = values.spin ? SPIN_MICROS : 0;
  stop.signal.addEventListener("abort", () => listener.close());
  // --spin: the waits poll (each spins up to a second before it would sleep), yielding to the
  // event loop between rounds so that signals and the peer's death are still seen.
  for await (const conn of listener) {
    const options = { signal: AbortSignal.any([stop.signal, conn.signal]), spinMicros };
    const serve = async () => {
      const buf = new Uint8Array(1 << 16);
      for (;;) {
        const closed = conn.rx.isClosed;
        const n = conn.rx.dequeue(buf);
        if (n === 0) {
          if (closed) break;
          await conn.rx.waitForData(options);
          if (values.spin) await breathe();
          continue;
        }
        for (let at = 0; at < n;) {
          at += conn.tx.enqueue(buf.subarray(at, n));
          if (at < n) await conn.tx.waitForSpace(Math.min(n - at, conn.tx.size >> 2), options);
        }
      }
      conn.close();
    };
    const served = serve().catch((error) => {
      conn.close();
      if (!(error instanceof SegmentError && error.code === "peer-gone") && !stop.signal.aborted) throw error;
    });
    if (values.once) {
      await served;
      return;
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
    const head = `${name}: ${formatBytes(segment.size)}, creator pid ${segment.creatorPid} (${
      alive ? "alive" : "dead"
    })`;
    // What is in it, gathered before anything is printed: a segment a peer broke is named with
    // its error, and the listing goes on to the next.
    let lines: string[];
    try {
      const fifos = segment.fifos();
      lines = [
        `${head}, ${fifos.length} fifos`,
        `  memory: ${formatMemory(segment.memoryStatus())}`,
        ...fifos.map((f) => `  ${f.toString()}`),
        ...segment.messageQueues().map((queue) => `  ${queue.toString()}`),
        ...segment.messageRings().map((ring) => `  ${ring.toString()}`),
      ];
    } catch (error) {
      if (!(error instanceof SegmentError)) throw error;
      lines = [`${head}, cannot list its contents (${error.code}): ${error.message}`];
    }
    for (const line of lines) console.log(line);
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
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = signal;
    stop.abort(new Error(`interrupted by ${signal}`));
  });
}
try {
  if (command === "demo") await demo(rest);
  else if (command === "echo") await echo(rest);
  else if (command === "show") show(rest);
  else if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(`${USAGE.demo}\n${USAGE.echo}\n${USAGE.show}`);
  } else {
    throw new UsageError(`unknown command ${JSON.stringify(command)} (commands: demo, echo, show; --help for usage)`);
  }
} catch (error) {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  // 2 for a wrong command line; 128 + the signal's number when interrupted, as shells report it.
  process.exitCode = error instanceof UsageError ? 2 : interrupted ? (interrupted === "SIGTERM" ? 143 : 130) : 1;
}
// Handlers registered for the signals must not keep the process alive once the work is done.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.removeAllListeners(signal);
