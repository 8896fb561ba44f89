// Shared helpers for the tests: unique segment names, the two runtimes' binaries, and running
// a peer script in a child process of either runtime.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { SegmentError } from "../mod.ts";
import { grantedEnv } from "../ffi/libc_path.ts";

export type Runtime = "deno" | "bun" | "node";

/** The runtime running this test. */
export const RUNTIME: Runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
/** The runtime at the other end of the cross-process tests: deno for bun and node, bun for deno. */
export const OTHER: Runtime = RUNTIME === "deno" ? "bun" : "deno";
/** Every runtime but this one: the peers of the tests that cover every pair of runtimes. */
export const OTHERS: readonly Runtime[] = (["deno", "bun", "node"] as const).filter((r) => r !== RUNTIME);
/** Both, this one first. */
export const RUNTIMES: readonly Runtime[] = [RUNTIME, OTHER];

/** The repository root. */
export const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** A predicate for `assert.throws` / `assert.rejects`: a `SegmentError` with this code. */
export const isCode = (code: string) => (e: unknown): boolean => e instanceof SegmentError && e.code === code;

let counter = 0;
/** `PREFIX-PID-N-RANDOM`: unique to this process (N) and across processes and runs (the pid, the random part). */
function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A segment name no other test (or run) uses. Every test removes what it creates under it; if the
 * test process is interrupted first, its reaper removes it (see {@link tracked}).
 */
export function uniqueName(tag: string): string {
  const name = unique(`svmtest-${tag}`);
  reap(`shm ${name}`);
  return name;
}

/** A fresh temporary directory `svm-TAG-...`, removed by the test, or by the reaper if it is interrupted. */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(`${tmpdir()}/svm-${tag}-`);
  reap(`path ${dir}`);
  return dir;
}

/** A temporary file's path `svm-TAG-...` (not created here), removed by the reaper if the test is interrupted. */
export function tempPath(tag: string, suffix = ""): string {
  const path = `${tmpdir()}/${unique(`svm-${tag}`)}${suffix}`;
  reap(`path ${path}`);
  return path;
}

/**
 * Hands a child process to the reaper: if this test process ends before the child did (a Ctrl-C,
 * which `deno test` obeys without running any `finally`, or a kill), the child and its process
 * group get SIGTERM, then SIGKILL. Returns the child.
 */
export function tracked<T extends ChildProcess>(child: T): T {
  const pid = child.pid;
  if (pid === undefined) return child;
  reap(`pid ${pid}`);
  child.once("exit", () => reap(`end ${pid}`));
  return child;
}

let journal: string | undefined;
/**
 * Starts this process's reaper (`tests/reaper.sh`) if it has none yet: a process of its own
 * session that waits for the end of a pipe only this process holds, and then undoes what the
 * journal lists. It starts by itself at the first name, path or child; a test file that counts
 * its open fds starts it first, so that the reaper's pipe is not counted as a leak.
 */
export function startReaper(): void {
  if (journal === undefined) {
    const path = `${tmpdir()}/${unique("svm-reaper")}`;
    appendFileSync(path, "");
    const reaper = spawn("bash", [`${ROOT}/tests/reaper.sh`, path], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void }).unref?.();
    keep.push(reaper); // the pipe's write end must live as long as this process
    journal = path;
  }
}

/** Appends a line to the reaper's journal, synchronously, so that a kill right after loses none. */
function reap(line: string): void {
  startReaper();
  appendFileSync(journal!, `${line}\n`);
}
const keep: ChildProcess[] = [];

/** Entries of /dev/shm whose name starts with `prefix`. */
export function shmEntries(prefix: string): string[] {
  return readdirSync("/dev/shm").filter((n) => n.startsWith(prefix));
}

/** The path of a runtime's binary: the project's own install first, then PATH. */
export function runtimeBinary(runtime: Runtime): string {
  const local = `${ROOT}/node_modules/.bin/${runtime}`;
  return existsSync(local) ? local : runtime;
}

/** The command line that runs a script under a runtime. */
export function scriptCommand(runtime: Runtime, script: string, args: readonly string[]): [string, string[]] {
  const bin = runtimeBinary(runtime);
  if (runtime === "deno") return [bin, ["run", "-A", "--quiet", script, ...args]];
  if (runtime === "node") return [bin, ["--no-warnings", script, ...args]];
  return [bin, [script, ...args]];
}

/** What a finished child process left. */
export interface PeerResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A running peer: its pid, its outcome, a way to end it, and its output as it comes. */
export interface Peer {
  readonly pid: number;
  readonly done: Promise<PeerResult>;
  kill(signal?: "SIGKILL" | "SIGTERM"): void;
  /** Resolves with the first stdout line that matches. */
  line(match: RegExp): Promise<string>;
}

/**
 * SIGKILLs `peer`, waits for it to end, and asserts that `pending` (begun before, its rejection
 * already caught) rejects with `SegmentError` "peer-gone" within `withinMs` of the death.
 */
export async function expectGoneAfterKill(peer: Peer, pending: Promise<unknown>, withinMs: number): Promise<void> {
  peer.kill("SIGKILL");
  await peer.done;
  const killed = performance.now();
  await assert.rejects(pending, isCode("peer-gone"));
  const took = performance.now() - killed;
  assert.ok(took < withinMs, `peer-gone after ${took.toFixed(0)} ms`);
}

/** Starts `tests/peers/NAME.ts` under a runtime. */
export function startPeer(runtime: Runtime, name: string, args: readonly string[], timeoutMs = 120_000): Peer {
  const [bin, argv] = scriptCommand(runtime, `${ROOT}/tests/peers/${name}.ts`, args);
  return startCommand(bin, argv, timeoutMs);
}

/**
 * Starts a command, its child handed to the reaper ({@link tracked}), and SIGKILLed after
 * `timeoutMs`. Unlike `spawnSync`, it leaves this process free to end it: under `deno test`, whose
 * children run in process groups of their own that a Ctrl-C does not reach, a long child (a
 * benchmark) then still ends with this process.
 */
export function startCommand(
  bin: string,
  argv: readonly string[],
  timeoutMs = 120_000,
  { group = false }: { group?: boolean } = {},
): Peer {
  // group: the child leads a process group of its own, and the time limit kills the whole group.
  // For an orchestrator (a benchmark): a SIGKILL runs none of its handlers, so the peers it
  // started would run on (polling ones on a core of their own) when only it was killed.
  const child = tracked(spawn(bin, argv, { stdio: ["ignore", "pipe", "pipe"], detached: group }));
  let stdout = "";
  let stderr = "";
  const waiters: { match: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    stdout += chunk;
    for (const w of [...waiters]) {
      const hit = stdout.split("\n").find((l) => w.match.test(l));
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  });
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => {
    if (group && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
        return;
      } catch { /* no group: the child alone below */ }
    }
    child.kill("SIGKILL");
  }, timeoutMs);
  const done = new Promise<PeerResult>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`${bin} ${argv.join(" ")} ended before printing ${w.match}: ${stderr}`));
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    done,
    kill: (signal = "SIGKILL") => child.kill(signal),
    line: (match) =>
      new Promise((resolve, reject) => {
        const hit = stdout.split("\n").find((l) => match.test(l));
        if (hit !== undefined) resolve(hit);
        else waiters.push({ match, resolve, reject });
      }),
  };
}

/**
 * A Node process that connects `count` times to the abstract stream socket `name` (a doorbell's,
 * a bell's: anyone may connect to one), keeps every connection it gets, and prints HELD once each
 * has connected (or failed); it runs until killed.
 */
export function holdConnections(name: string, count: number): Peer {
  const script = `const net = require("node:net"); const [name, count] = process.argv.slice(-2); let n = 0;
    const kept = []; const one = () => { if (++n === Number(count)) console.log("HELD"); };
    for (let i = 0; i < Number(count); i++) { const c = net.connect({ path: "\\0" + name }, one);
      c.on("error", one); kept.push(c); }
    setInterval(() => {}, 1000);`;
  return startCommand(runtimeBinary("node"), ["-e", script, "--", name, String(count)], 60_000);
}

/**
 * The number of fds process `pid` has open, looked at every 20 ms for up to `ms` until it is at
 * most `atMost` (a runtime may close what it dropped a little later).
 */
export async function fdsSettled(pid: number, atMost: number, ms = 3000): Promise<number> {
  let open = 0;
  for (const end = performance.now() + ms; performance.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    open = readdirSync(`/proc/${pid}/fd`).length;
    if (open <= atMost) break;
  }
  return open;
}

/** Runs a peer to its end and returns its outcome. */
export function runPeer(
  runtime: Runtime,
  name: string,
  args: readonly string[],
  timeoutMs?: number,
): Promise<PeerResult> {
  return startPeer(runtime, name, args, timeoutMs).done;
}

/** Throws with the peer's output unless it exited 0. */
export function expectSuccess(result: PeerResult, what: string): void {
  if (result.code !== 0) {
    throw new Error(
      `${what} failed (code ${result.code}, signal ${result.signal})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
}

/** Fills `buf` with the pattern byte of each absolute stream position. */
export function pattern(buf: Uint8Array, position: number, seed = 0): Uint8Array {
  for (let i = 0; i < buf.length; i++) buf[i] = patternByte(position + i, seed);
  return buf;
}

/** The byte at absolute stream position `p` of the test pattern. */
export function patternByte(p: number, seed = 0): number {
  return Math.imul((p >>> 0) ^ seed, 0x9e3779b1) >>> 24;
}

/** Period of the stream pattern: prime, so it never lines up with a ring or a write size. */
export const STREAM_PERIOD = 1_000_003;
/** The largest write or read the stream tests make. */
export const STREAM_MAX_IO = 1 << 16;

/**
 * The stream pattern as a table: byte at stream position p is `table[p % STREAM_PERIOD]`, and
 * the table is long enough that any write of up to STREAM_MAX_IO bytes is one subarray of it.
 */
export function streamTable(): Uint8Array {
  const table = new Uint8Array(STREAM_PERIOD + STREAM_MAX_IO);
  for (let i = 0; i < table.length; i++) table[i] = patternByte(i % STREAM_PERIOD, 0x5a);
  return table;
}

/** Whether a process runs: exists and is not a zombie (a child this event loop has not reaped yet). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * The shift of every seeded test's seeds: with `SVM_SEED=N` the random tests (hostile peers,
 * fuzzing, the fifo model, message queues and rings, chunked streams) draw seeds N + 1, N + 2, ...
 * where the suite draws 1, 2, ..., so that a long run explores states the suite never reaches. A
 * failure names its seed; the same `SVM_SEED` reproduces it. 0 by default: the suite's own seeds.
 */
export const SEED: number = seedShift(grantedEnv("SVM_SEED")); // unset for a Deno peer without env access

function seedShift(text: string | undefined): number {
  if (text === undefined || text === "") return 0;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31) {
    throw new RangeError(`SVM_SEED must be a whole number from 0 to 2^31, not ${JSON.stringify(text)}`);
  }
  return n;
}

/** A small deterministic generator (xorshift32) of numbers in [0, 1). */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}
