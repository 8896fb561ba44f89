// The benchmarks still work: run in a tiny quick mode (no timing is asserted, ever).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { SegmentMain } from "../mod.ts";
import {
  type PeerResult,
  ROOT,
  running,
  RUNTIME,
  scriptCommand,
  shmEntries,
  startCommand,
  tempDir,
  tracked,
  uniqueName,
} from "./helpers.ts";

/**
 * Runs a benchmark, leading a process group of its own that its time limit kills whole, then
 * removes the segments and files it left (named "svmbench-...-PID-...") and names them in `left`:
 * a run that ended by itself must have left none, and one SIGKILLed at its limit, which ran no
 * handler, must not leave them to fail the tests after it.
 */
async function runBench(
  bin: string,
  argv: readonly string[],
  limitMs: number,
): Promise<PeerResult & { left: string[] }> {
  const started = startCommand(bin, argv, limitMs, { group: true });
  const run = await started.done;
  const mark = `-${started.pid}-`;
  const left: string[] = [];
  for (const [dir, names] of [["/dev/shm", shmEntries("svmbench-")], [tmpdir(), readdirSync(tmpdir())]] as const) {
    for (const name of names) {
      if (!name.startsWith("svmbench-") || !name.includes(mark)) continue;
      left.push(name);
      rmSync(`${dir}/${name}`, { recursive: true, force: true });
    }
  }
  return { ...run, left };
}

/** bench/run.ts refuses to run on one CPU (see the test of that below). */
const oneCpu = availableParallelism() < 2 ? "bench/run.ts needs two CPUs" : false;
// Deno orchestrates Deno and Node (their pairs, and Node's rows), Bun its own pair; under Node the
// run would only repeat Node's pair, which the Deno run has (and `npm run bench` runs in Deno).
const benchRunSkip = RUNTIME === "node" ? "Node's pair runs in the Deno run of this test" : oneCpu;

test(`bench/run.ts under ${RUNTIME} on one CPU says it needs two and exits 2 at once`, {
  skip: existsSync("/usr/bin/taskset") ? false : "no taskset",
}, async () => {
  // Its polling cases would each take a time slice per message there: the quick run took over 6 minutes.
  const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/run.ts`, ["--quick", "--runtimes", RUNTIME]);
  const run = await runBench("taskset", ["-c", "0", bin, ...argv], 30_000);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /^bench\/run\.ts needs two CPUs .* may run on 1 /);
  assert.deepEqual(run.left, [], "left by the run");
});

test(`bench/run.ts --quick under ${RUNTIME}: every case runs, checks its data and writes its results`, {
  skip: benchRunSkip,
}, async () => {
  const out = tempDir("bench");
  try {
    const runtimes = ["--runtimes", RUNTIME === "deno" ? "deno,node" : RUNTIME];
    const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/run.ts`, ["--quick", "--out", out, ...runtimes]);
    const run = await runBench(bin, argv, 180_000);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.left, [], "left by the run");
    assert.match(run.stdout, /\| stream, 64 B writes \(GB\/s\) \|/);
    assert.match(run.stdout, /\| Unix socket, 65536 B writes \|/);
    assert.match(run.stdout, /\| stream, 64 KiB writes, chunked 1 MiB fifo, 64 KiB chunks \(GB\/s\) \|/);
    assert.match(run.stdout, /\| 1000 idle fifos of 64 KiB, segment memory held \(MiB\) \|/);
    assert.match(
      run.stdout,
      /\| the same, neither process pinned \(us\) \|.*p50 [0-9.]+x \(median of 1 alternating parts/,
    );
    const json = JSON.parse(readFileSync(`${out}/quick.json`, "utf8"));
    assert.equal(json.quick, true);
    const kinds = new Set(json.rows.map((r: { kind: string }) => r.kind));
    assert.deepEqual([...kinds].sort(), [
      "fifo",
      "fifo-chunked",
      "fifo-chunked-256k",
      "fifo-sleep",
      "floor-rtt",
      "idle",
      "msg",
      "pingpong",
      "pipe",
      "ring",
      "ring-rtt",
      "server-any",
      "server-set",
      "uds",
      "uds-rtt",
      "uds-rtt-free",
      "uds-server",
      "wakeup",
      "wakeup-free",
    ]);
    // Per pair, 3 stream sizes, 2 chunked streams and 6 more cross-process cases; per runtime, the socket round trip,
    // the ring round trip's floor, idle CPU, 6 socket and pipe rows, the sleeping round trip and the socket's with
    // neither process pinned, and a server's round trip in a WaitSet, in waitAny and over sockets.
    const pairs = new Set(json.rows.map((r: { producer: string; consumer: string }) => `${r.producer}-${r.consumer}`));
    if (RUNTIME === "deno") {
      assert.equal(json.rows.length, 3 * 3 + 3 * 2 + 3 * 6 + 2 * (1 + 1 + 1 + 6 + 2 + 3));
      assert.deepEqual([...pairs].sort(), ["deno-deno", "node-deno", "node-node"]);
    } else {
      assert.equal(json.rows.length, 3 + 2 + 6 + 1 + 1 + 1 + 6 + 2 + 3);
      assert.deepEqual([...pairs], [`${RUNTIME}-${RUNTIME}`]);
    }
    assert.match(readFileSync(`${out}/quick.svg`, "utf8"), /^<svg /);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.deepEqual(shmEntries("svmbench-"), []);
});

test(`bench/queue.ts --quick under ${RUNTIME}: every message queue case runs and checks its order`, async () => {
  const out = tempDir("bench");
  try {
    const args = ["--quick", "--out", out, "--runtimes", RUNTIME];
    const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/queue.ts`, args);
    const run = await runBench(bin, argv, 180_000);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.left, [], "left by the run");
    assert.match(run.stdout, /\| 4 producer processes \|/);
    assert.match(run.stdout, /round trip through two queues/);
    assert.equal(JSON.parse(readFileSync(`${out}/queue-quick.json`, "utf8")).quick, true);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  assert.deepEqual(shmEntries("svmbench-"), []);
});

test(`bench/connection.ts --quick under ${RUNTIME}: connect, round trip and stream rows beside a Unix socket's`, async () => {
  const out = tempDir("bench");
  try {
    const args = ["--quick", "--out", out, "--runtimes", RUNTIME];
    const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/connection.ts`, args);
    const run = await runBench(bin, argv, 180_000);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.left, [], "left by the run");
    assert.match(run.stdout, /\| connect \+ accept \(us, p50 \/ mean\) \| [0-9.]+ \/ [0-9.]+ \|\n/);
    assert.match(run.stdout, /\| the same over a Unix socket, node:net \(GB\/s\) \| [0-9.]+ \|\n/);
    assert.match(run.stdout, /\| the same, read with a BYOB reader into one 1 MiB buffer \(GB\/s\) \| [0-9.]+ \|\n/);
    assert.match(run.stdout, /\| stream over the socket's, median of the alternating parts \| [0-9.]+x \|\n/);
    assert.equal(JSON.parse(readFileSync(`${out}/connection-quick.json`, "utf8")).quick, true);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test(`bench/peer.ts under ${RUNTIME} runs from a directory whose path has a space: its pipe case counts every byte`, () => {
  // The pipe case starts its writer by the peer's own path: taken from the URL undecoded, it was
  // ".../with%20space/...", no such module, and the row measured 0 bytes.
  const dir = tempDir("bench-space");
  try {
    const root = `${dir}/with space`;
    for (const part of ["mod.ts", "src", "ffi", "bench"]) {
      cpSync(`${ROOT}/${part}`, `${root}/${part}`, { recursive: true });
    }
    const [bin, argv] = scriptCommand(RUNTIME, `${root}/bench/peer.ts`, ["pipe-read", "64", "100"]);
    const run = spawnSync(bin, argv, { encoding: "utf8", timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^RESULT .*"bytes":6400[,}]/m, run.stdout + run.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`bench/micro.ts --quick under ${RUNTIME}`, async () => {
  const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/micro.ts`, ["--quick"]);
  const run = await runBench(bin, argv, 120_000);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.left, [], "left by the run");
  for (const task of ["enqueue+dequeue 64 B", "peek 64 B", "allocFifo+freeFifo 4 KiB"]) {
    assert.ok(run.stdout.includes(task), task);
  }
});

test(`bench/run.ts under ${RUNTIME}: Ctrl-C mid-run kills its peers and leaves nothing in /dev/shm`, {
  skip: oneCpu,
}, async () => {
  const out = tempDir("bench");
  const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/run.ts`, ["--quick", "--out", out]);
  const run = tracked(spawn(bin, argv, { stdio: ["ignore", "pipe", "pipe"] }));
  let err = "";
  run.stderr!.setEncoding("utf8").on("data", (c) => (err += c));
  run.stdout!.resume();
  const exited = new Promise<void>((r) => run.on("close", () => r()));
  try {
    const deadline = Date.now() + 60_000;
    while (!err.includes("fifo ") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    run.kill("SIGINT");
    await exited;
    assert.match(err, /interrupted by SIGINT/);
  } finally {
    run.kill("SIGKILL");
    rmSync(out, { recursive: true, force: true });
  }
  assert.deepEqual(shmEntries("svmbench-"), []);
  const peers = spawnSync("pgrep", ["-f", `${ROOT}/bench/peer.ts`], { encoding: "utf8" }).stdout.trim();
  assert.equal(peers, "", "no peer left running");
});

// A benchmark peer waits for its orchestrator's start flag after READY; an orchestrator SIGKILLed then (a test's time
// limit, a CI job's) could kill none of them, and they waited on for good: a polling one spinning on a core (two were
// found spinning 18 minutes after such a kill). Here the orchestrator is a shell that started the peer.
for (const [script, role] of [["peer.ts", "fifo-produce"], ["queue_peer.ts", "mq-produce"]] as const) {
  test(`bench/${script} (${role}, ${RUNTIME}): a peer whose orchestrator is SIGKILLed before the start exits`, async () => {
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name: uniqueName("orphan"), size: 1 << 20 });
    const go = segment.allocFifo(4096)!;
    const queue = segment.allocMessageQueue({ slots: 8, slotSize: 64 })!;
    const args = role === "fifo-produce"
      ? [role, segment.name, String(go.offset), "4096", "1000"]
      : [role, segment.name, String(queue.offset), String(go.offset), "0", "1000", "poll"];
    const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/bench/${script}`, args);
    const shell = tracked(
      spawn("bash", ["-c", '"$@" & echo "pid $!"; wait', "orchestrator", bin, ...argv], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    let out = "";
    let err = "";
    shell.stdout!.setEncoding("utf8").on("data", (c) => (out += c));
    shell.stderr!.setEncoding("utf8").on("data", (c) => (err += c));
    // Closed once the shell and the peer, the pipes' writers, are both gone and all they wrote was read.
    const closed = new Promise((r) => shell.on("close", r));
    let peer = 0;
    try {
      for (let i = 0; i < 600 && !/READY/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      peer = Number(/pid (\d+)/.exec(out)?.[1] ?? 0);
      assert.ok(peer > 0 && /READY/.test(out), `the peer did not start: ${out} ${err}`);
      shell.kill("SIGKILL");
      for (let i = 0; i < 100 && running(peer); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!running(peer), `the peer ${peer} still runs 5 s after its orchestrator died`);
      // What the peer wrote as it went may still be unread: a timer can come before the pipe's data.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      assert.match(err, /orchestrator \(pid \d+\) is gone before the start/);
    } finally {
      shell.kill("SIGKILL");
      if (peer > 0) {
        try {
          process.kill(peer, "SIGKILL");
        } catch { /* gone */ }
      }
      sm.delete(segment);
    }
  });
}
