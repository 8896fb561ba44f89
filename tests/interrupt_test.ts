// A test process that is interrupted leaves nothing behind: its segments' names, its temporary
// files and directories and its children all go, though `deno test` ends on Ctrl-C without
// running any `finally`, and nothing runs after a SIGKILL (tests/reaper.sh does the work).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import {
  ROOT,
  running,
  RUNTIME,
  type Runtime,
  runtimeBinary,
  startCommand,
  startPeer,
  tempPath,
  tracked,
} from "./helpers.ts";

/** What the interrupted process reported: its segment's name, its directory, its file and its child's pid. */
interface Left {
  name: string;
  dir: string;
  file: string;
  child: number;
}

function parse(line: string): Left {
  const [, name, dir, file, child] = line.trim().split(" ");
  return { name, dir, file, child: Number(child) };
}

/** Waits up to 10 s for everything the interrupted process had to be gone; then removes what is left. */
async function expectGone(left: Left): Promise<void> {
  const what = () =>
    [
      existsSync(`/dev/shm/${left.name}`) ? `the segment ${left.name}` : "",
      existsSync(left.dir) ? `the directory ${left.dir}` : "",
      existsSync(left.file) ? `the file ${left.file}` : "",
      running(left.child) ? `the child ${left.child}` : "",
    ].filter((s) => s !== "");
  const deadline = Date.now() + 10_000;
  try {
    while (what().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(what(), [], "left behind");
  } finally {
    try {
      process.kill(left.child, "SIGKILL");
    } catch { /* gone, as it should be */ }
    rmSync(`/dev/shm/${left.name}`, { force: true });
    rmSync(left.dir, { recursive: true, force: true });
    rmSync(left.file, { force: true });
  }
}

/**
 * What each test here interrupts is a process of its own, whatever runtime runs the test: each runs
 * in the suite of the runtime it interrupts (the test's own part, spawning and looking, is the same
 * in all three), which spares the whole run some 30 s.
 */
function elsewhere(runtime: Runtime): string | false {
  return runtime === RUNTIME ? false : `interrupts a ${runtime} process: runs in the ${runtime} run of the suite`;
}

for (const runtime of ["deno", "bun", "node"] as Runtime[]) {
  test(`a ${runtime} test process killed with SIGKILL leaves no segment, file, directory or child behind`, {
    skip: elsewhere(runtime),
  }, async () => {
    const parent = startPeer(runtime, "interrupted", ["parent"]);
    const left = parse(await parent.line(/^READY /));
    assert.ok(existsSync(`/dev/shm/${left.name}`) && existsSync(left.dir) && existsSync(left.file));
    assert.ok(running(left.child));
    parent.kill("SIGKILL");
    await parent.done;
    await expectGone(left);
  });
}

/** Each runner, as a terminal's foreground job: a process group of its own, with SIGINT at its default action. */
const RUNNERS: [Runtime, string, string[]][] = [
  ["deno", "deno test", [runtimeBinary("deno"), "test", "-A", "--quiet"]],
  ["bun", "bun test", [runtimeBinary("bun"), "test"]],
  ["node", "node --test", [runtimeBinary("node"), "--no-warnings", "--test"]],
];

for (const [runtime, label, command] of RUNNERS) {
  test(`${label} interrupted by a Ctrl-C leaves no segment, file, directory or child behind`, {
    skip: elsewhere(runtime),
  }, async () => {
    const report = tempPath("interrupt-report");
    // A shell's background jobs ignore SIGINT, and a child inherits that: env resets it, as a terminal has it.
    const argv = ["--default-signal=INT", ...command, `${ROOT}/tests/peers/interrupted.ts`];
    const env: Record<string, string | undefined> = { ...process.env, SVM_INTERRUPTED_REPORT: report };
    delete env.NODE_TEST_CONTEXT; // set by node --test for its children: a nested node --test would report to it
    const child = tracked(spawn("env", argv, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (out += c));
    let code: number | null | undefined;
    const ended = new Promise((r) => child.once("close", (c) => r(code = c)));
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(report) || !readFileSync(report, "utf8").endsWith("\n")) {
        if (code !== undefined || Date.now() > deadline) throw new Error(`${label} ended or hung before READY: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const left = parse(readFileSync(report, "utf8"));
      process.kill(-child.pid!, "SIGINT"); // the whole group, as a terminal does
      const stopped = await Promise.race([
        ended.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      assert.ok(stopped, `${label} ended on the Ctrl-C`);
      await expectGone(left);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch { /* gone */ }
      rmSync(report, { force: true });
    }
  });
}

test("a test that times out under bun test leaves no segment, file, directory or child behind", {
  skip: elsewhere("bun"),
}, async () => {
  // Bun ends the processes a timed-out test started with SIGTERM, the reaper among them when that
  // test was the first to need one: the reaper ignores it and cleans up when the runner exits.
  const report = tempPath("timeout-report");
  const env: Record<string, string | undefined> = { ...process.env, SVM_INTERRUPTED_REPORT: report };
  const argv = ["test", "--timeout", "2000", `${ROOT}/tests/peers/interrupted.ts`];
  const child = tracked(spawn(runtimeBinary("bun"), argv, { env, stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (out += c));
  const ended = new Promise<number | null>((r) => child.once("close", (c) => r(c)));
  try {
    const code = await Promise.race([ended, new Promise((r) => setTimeout(() => r("hung"), 30_000))]);
    assert.equal(code, 1, `bun test failed the timed-out test and ended: ${out}`);
    assert.match(out, /timed out/);
    await expectGone(parse(readFileSync(report, "utf8")));
  } finally {
    child.kill("SIGKILL");
    rmSync(report, { force: true });
  }
});

test("a benchmark's run killed at its time limit in a test takes the processes it started along", async () => {
  // The shape of bench/run.ts killed by the time limit of tests/bench_smoke_test.ts: once, on a 1-CPU machine, the
  // run was SIGKILLed alone and two of its polling peers spun on for 18 minutes.
  const run = startCommand("bash", ["-c", 'sleep 600 & echo "pid $!"; wait'], 500, { group: true });
  const line = await run.line(/^pid \d+/);
  const started = Number(line.slice(4));
  assert.ok(running(started));
  try {
    // Its end comes once its output pipes close, which the child, holding them too, delays while it lives.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((r) => timer = setTimeout(() => r(null), 10_000));
    const result = await Promise.race([run.done, late]);
    clearTimeout(timer);
    assert.ok(!running(started), `the run's child ${started} outlived it`);
    assert.equal(result?.signal, "SIGKILL");
  } finally {
    try {
      process.kill(started, "SIGKILL");
    } catch { /* gone, as it should be */ }
  }
});
