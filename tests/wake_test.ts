// Waking through the event loop (issue 11): waits that hold no thread, scale to a thousand,
// lose no wake-up across processes of two runtimes, notice a dead peer, and tell an abort from
// an end. Peers run under the other runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { type Fifo, type MessageRing, type Segment, SegmentError, SegmentMain, waitAny, WaitSet } from "../mod.ts";
import {
  doorbellName,
  EV_TAIL,
  FF_DATA_WAITER,
  FF_TAIL,
  FIFO_HEADER_SIZE,
  SLEEPER_ENTRY_SIZE,
  SLEEPER_PARKED,
  SLEEPER_TABLE,
  SLP_EVENTS,
  SLP_FLAGS,
  SLP_KEY,
  SLP_TAG,
} from "../src/layout.ts";
import { spawn } from "node:child_process";
import { loadOs } from "../ffi/load.ts";
import { openDoorbell } from "../ffi/doorbell.ts";
import { WakeHub } from "../src/wake/wake_hub.ts";
import type { Os, OsError } from "../ffi/os.ts";
import {
  expectGoneAfterKill,
  expectSuccess,
  fdsSettled,
  holdConnections,
  isCode,
  OTHER,
  patternByte,
  ROOT,
  RUNTIME,
  runtimeBinary,
  shmEntries,
  startPeer,
  startReaper,
  tempPath,
  tracked,
  uniqueName,
} from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An shm segment with `count` fifos of `size` bytes, deleted (and checked gone) after `run`. */
async function withFifos(
  count: number,
  size: number,
  run: (fifos: Fifo[], name: string, segment: Segment) => Promise<void>,
  os?: Os,
): Promise<void> {
  const name = uniqueName("wake");
  const sm = new SegmentMain({ os });
  try {
    const segment = sm.create({ type: "shm", name, size: 16 << 20 });
    const fifos = Array.from({ length: count }, () => segment.allocFifo(size)!);
    await run(fifos, name, segment);
  } finally {
    sm[Symbol.dispose]();
  }
  assert.deepEqual(shmEntries(name), []);
}

/**
 * This runtime's Os, counting how this process rings other processes' doorbells: bytes sent
 * through sockets, bytes written to pipes, and the errors of the writes.
 */
function countingOs() {
  const real = loadOs();
  const rings = { socket: 0, pipe: 0, pipeErrors: [] as string[] };
  const os: Os = {
    ...real,
    send(fd, bytes) {
      rings.socket++;
      return real.send(fd, bytes);
    },
    write(fd, bytes) {
      rings.pipe++;
      try {
        return real.write(fd, bytes);
      } catch (error) {
        rings.pipeErrors.push((error as OsError).code);
        throw error;
      }
    },
  };
  return { os, rings };
}

function threads(): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median latency of reading a small file, as the runtime's users do it. */
async function fileReadMs(path: string): Promise<number> {
  const deno = (globalThis as { Deno?: { readTextFile(p: string): Promise<string> } }).Deno;
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    if (deno) await deno.readTextFile(path);
    else await readFile(path, "utf8");
    times.push(performance.now() - t);
  }
  return median(times);
}

test(`1000 pending waits hold no thread and little memory, leave file I/O alone, and each wakes with its own data from ${OTHER}`, async () => {
  await withFifos(1000, 64, async (fifos, name) => {
    const file = tempPath("readfile", ".txt");
    writeFileSync(file, "x".repeat(1000));
    try {
      // Warm up the doorbell and the file path before the baseline.
      assert.equal(await fifos[0].waitForData({ timeoutMs: 5 }), false);
      const idleRead = await fileReadMs(file);
      const threadsBefore = threads();
      const rssBefore = process.memoryUsage().rss;
      const waits = fifos.map((f) => f.waitForData({ timeoutMs: 60_000 }));
      await sleep(100);
      const busyRead = await fileReadMs(file);
      const extraThreads = threads() - threadsBefore;
      const grewMiB = (process.memoryUsage().rss - rssBefore) / (1 << 20);
      assert.ok(extraThreads <= 2, `${extraThreads} more threads with 1000 waits pending`);
      assert.ok(grewMiB < 32, `memory grew by ${grewMiB.toFixed(1)} MiB with 1000 waits pending`);
      // The blocking pool is untouched: file reads take what they took idle (timing noise allowed).
      assert.ok(
        busyRead < 2 * idleRead + 2,
        `a file read took ${busyRead.toFixed(2)} ms, idle ${idleRead.toFixed(2)} ms`,
      );
      const writer = startPeer(OTHER, "wake_peer", ["one-each", name, fifos.map((f) => f.offset).join(",")]);
      assert.deepEqual(await Promise.all(waits), fifos.map(() => true));
      const word = new Uint8Array(4);
      fifos.forEach((fifo, i) => {
        assert.equal(fifo.dequeueExact(word), true);
        assert.equal(new DataView(word.buffer).getUint32(0, true), i, `fifo ${i} holds its own index`);
      });
      expectSuccess(await writer.done, "writer");
    } finally {
      rmSync(file, { force: true });
    }
  });
});

/**
 * 8 MiB in random bursts from a process of the other runtime to 1000 fifos, which it then closes,
 * read through `reader`: `wait` resolves with the fifos to read (`open` holds those not yet
 * closed and drained), `skip` leaves a ready fifo unread until a later wake-up. Every byte is
 * checked and counted.
 */
async function burstsRead(
  seed: string,
  reader: (fifos: Fifo[]) => {
    wait(): Promise<Fifo[]>;
    closed(fifo: Fifo): void;
    readonly open: number;
    skip?(fifo: Fifo, wakes: number): boolean;
  },
): Promise<void> {
  const total = 8 << 20;
  await withFifos(1000, 4096, async (fifos, name) => {
    const peer = startPeer(OTHER, "wake_peer", [
      "many-bursts",
      name,
      fifos.map((f) => f.offset).join(","),
      String(total),
      seed,
    ], 300_000);
    const got = new Array<number>(fifos.length).fill(0);
    const index = new Map(fifos.map((f, i) => [f, i]));
    const read = reader(fifos);
    const buf = new Uint8Array(4096);
    let bad = 0;
    let wakes = 0;
    while (read.open > 0) {
      const ready = await read.wait();
      assert.ok(ready.length > 0, `no fifo ready for 20 s with ${read.open} open: a lost wake-up`);
      wakes++;
      for (const fifo of ready) {
        if (read.skip?.(fifo, wakes)) continue;
        const i = index.get(fifo)!;
        const closed = fifo.isClosed;
        for (let n = fifo.dequeue(buf); n > 0; n = fifo.dequeue(buf)) {
          for (let k = 0; k < n; k++) if (buf[k] !== patternByte(got[i] + k, i)) bad++;
          got[i] += n;
        }
        if (closed && fifo.maxDequeue === 0) read.closed(fifo);
      }
    }
    const result = await peer.done;
    expectSuccess(result, "burst writer");
    const { sent } = JSON.parse(result.stdout.split("DONE ")[1]);
    assert.equal(bad, 0, "every byte as written");
    assert.deepEqual(got, sent, "every byte of every fifo arrived");
    assert.equal(got.reduce((a, b) => a + b, 0), total);
    assert.ok(wakes > 10, `the reader slept and woke (${wakes} times)`);
  });
}

test(`no lost wake-up: 1000 fifos, random bursts from ${OTHER}, read through waitAny; every byte counted`, async () => {
  await burstsRead("11", (fifos) => {
    const open = new Set(fifos);
    return {
      wait: () => waitAny(open, { timeoutMs: 20_000 }),
      closed: (fifo) => open.delete(fifo),
      get open() {
        return open.size;
      },
    };
  });
});

test(`peer death: the producer (${OTHER}) is SIGKILLed; the reader drains, then its stream fails with peer-gone within a second`, async () => {
  await withFifos(1, 4096, async ([fifo], name) => {
    const peer = startPeer(OTHER, "wake_peer", ["produce-then-hang", name, String(fifo.offset), "1000"]);
    try {
      await peer.line(/^WROTE/);
      const reader = fifo.readable.getReader();
      let got = 0;
      while (got < 1000) {
        const { value } = await reader.read();
        for (const byte of value!) assert.equal(byte, patternByte(got++, 1));
      }
      const pending = reader.read();
      await sleep(50);
      await expectGoneAfterKill(peer, pending, 1000);
      // A wait that starts after the death fails too, sync or not, once nothing is left to read.
      await assert.rejects(fifo.waitForData({ timeoutMs: 5000 }), isCode("peer-gone"));
      assert.throws(() => fifo.waitForDataSync({ timeoutMs: 5000 }), isCode("peer-gone"));
    } finally {
      peer.kill("SIGKILL");
      await peer.done;
    }
  });
});

test(`peer death: the consumer (${OTHER}) is SIGKILLed; pipeTo into the full fifo fails with peer-gone within a second`, async () => {
  await withFifos(1, 4096, async ([fifo], name) => {
    const peer = startPeer(OTHER, "wake_peer", ["consume-then-hang", name, String(fifo.offset)]);
    try {
      await peer.line(/^READY/);
      let pulled = 0;
      const source = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(new Uint8Array(1024).fill(9));
        },
      });
      const piping = source.pipeTo(fifo.writable);
      piping.catch(() => {});
      while (fifo.maxEnqueue > 0) await sleep(5); // full: the pipe now sleeps in waitForSpace
      await sleep(50);
      await expectGoneAfterKill(peer, piping, 1000);
      assert.ok(pulled >= 4);
    } finally {
      peer.kill("SIGKILL");
      await peer.done;
    }
  });
});

test(`abort: a ${OTHER} producer's writable.abort() errors the reader's stream after the data; close() ends it`, async () => {
  await withFifos(2, 4096, async ([aborted, closed], name) => {
    const peer = startPeer(OTHER, "wake_peer", ["abort-after", name, String(aborted.offset), "100"]);
    const reader = aborted.readable.getReader();
    let got = 0;
    await assert.rejects(
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          got += value.length;
        }
      })(),
      isCode("aborted"),
    );
    assert.equal(got, 100, "what was written before the abort is read first");
    assert.equal(aborted.isAborted, true);
    expectSuccess(await peer.done, "aborting writer");
    // close() still ends a stream cleanly.
    const writer = closed.writable.getWriter();
    await writer.write(new Uint8Array(10));
    await writer.close();
    let bytes = 0;
    for await (const chunk of closed.readable) bytes += chunk.length;
    assert.equal(bytes, 10);
    assert.equal(closed.isAborted, false);
  });
});

test("waitAny: ready, closed and timed-out fifos; several segments; a signal; bad arguments", async () => {
  using sm = new SegmentMain();
  const one = sm.create({ type: "shm", name: uniqueName("any1"), size: 1 << 20 });
  const two = sm.create({ type: "private", name: "any2", size: 1 << 20 });
  const a = one.allocFifo(4096)!;
  const b = one.allocFifo(4096)!;
  const c = two.allocFifo(4096)!;
  assert.deepEqual(await waitAny([]), []);
  const t = performance.now();
  assert.deepEqual(await waitAny([a, b, c], { timeoutMs: 100 }), []);
  assert.ok(performance.now() - t >= 90);
  setTimeout(() => b.enqueue(new Uint8Array(1)), 20);
  assert.deepEqual(await waitAny([a, b, c]), [b]);
  b.dequeueDropAll();
  setTimeout(() => c.close(), 20);
  assert.deepEqual(await waitAny([a, b, c]), [c], "a closed fifo is ready");
  a.enqueue(new Uint8Array(1));
  assert.deepEqual(await waitAny([a, b, c]), [a, c], "all that are ready, in the order given");
  a.dequeueDropAll();
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stop")), 20);
  await assert.rejects(waitAny([a, b], { signal: controller.signal }), /stop/);
  await assert.rejects(waitAny([a, {} as Fifo]), TypeError);
  await assert.rejects(waitAny([a], { timeoutMs: -1 }), RangeError);
  // Still armed correctly afterwards.
  setTimeout(() => a.enqueue(new Uint8Array(1)), 20);
  assert.deepEqual(await waitAny([a, b], { timeoutMs: 5000 }), [a]);
});

test(`no lost wake-up: 1000 fifos, random bursts from ${OTHER}, read through one WaitSet; every byte counted`, async () => {
  using set = new WaitSet<Fifo>();
  await burstsRead("23", (fifos) => {
    for (const fifo of fifos) set.add(fifo);
    const index = new Map(fifos.map((f, i) => [f, i]));
    return {
      wait: () => set.wait({ timeoutMs: 20_000 }),
      closed: (fifo) => set.delete(fifo),
      get open() {
        return set.size;
      },
      // Some are left unread until the next wake-up: a member stays ready until it is drained.
      skip: (fifo, wakes) => wakes % 3 === 0 && index.get(fifo)! % 2 === 0,
    };
  });
});

test("WaitSet: members ready, closed or timed out, in the order added; several segments; changes during a wait; a signal; one wait at a time; close", async () => {
  using sm = new SegmentMain();
  const one = sm.create({ type: "shm", name: uniqueName("set1"), size: 1 << 20 });
  const two = sm.create({ type: "private", name: "set2", size: 1 << 20 });
  const [a, b, d, e] = [1, 2, 3, 4].map(() => one.allocFifo(4096)!);
  const c = two.allocFifo(4096)!;
  const ring = one.allocMessageRing(4096)!;
  const byte = new Uint8Array(1);
  using set = new WaitSet<Fifo | MessageRing>([a, b, c]);
  assert.equal(set.size, 3);
  assert.ok(set.has(b) && !set.has(d));
  let t = performance.now();
  assert.deepEqual(await set.wait({ timeoutMs: 100 }), []);
  assert.ok(performance.now() - t >= 90);
  setTimeout(() => b.enqueue(byte), 20);
  assert.deepEqual(await set.wait(), [b]);
  assert.deepEqual(await set.wait({ timeoutMs: 0 }), [b], "level-triggered: ready until drained");
  b.dequeueDropAll();
  setTimeout(() => c.close(), 20);
  assert.deepEqual(await set.wait(), [c], "a closed member of a private segment is ready");
  set.delete(c);
  a.enqueue(byte);
  b.enqueue(byte);
  assert.deepEqual(await set.wait(), [a, b], "all that are ready, in the order added");
  a.dequeueDropAll();
  b.dequeueDropAll();
  // Members added and deleted while a wait is pending, in this and a new segment.
  const three = sm.create({ type: "shm", name: uniqueName("set3"), size: 1 << 20 });
  const f = three.allocFifo(4096)!;
  let pending = set.wait({ timeoutMs: 10_000 });
  await sleep(10);
  set.add(d).add(f).delete(a);
  await sleep(20);
  // Parked: every member's waiter word names this process (a write posts an event), and the
  // deleted one's was let go.
  const waiter = (fifo: Fifo) => Atomics.load(fifo === f ? three.u32 : one.u32, (fifo.offset + FF_DATA_WAITER) >>> 2);
  const own = one.liveness.ownTag;
  assert.deepEqual([b, d, f, a].map(waiter), [own, own, own, 0]);
  a.enqueue(byte); // no longer a member
  await sleep(20);
  f.enqueue(byte);
  assert.deepEqual(await pending, [f]);
  f.dequeueDropAll();
  pending = set.wait({ timeoutMs: 10_000 });
  await sleep(10);
  d.enqueue(byte);
  assert.deepEqual(await pending, [d]);
  d.dequeueDropAll();
  // A private segment's member added while a wait sleeps on another of that segment.
  const g = two.allocFifo(4096)!;
  const h = two.allocFifo(4096)!;
  set.add(g);
  pending = set.wait({ timeoutMs: 10_000 });
  await sleep(10);
  set.add(h);
  await sleep(10);
  h.enqueue(byte);
  assert.deepEqual(await pending, [h]);
  h.dequeueDropAll();
  set.delete(g);
  set.delete(h);
  // A message ring as a member.
  set.add(ring);
  pending = set.wait({ timeoutMs: 10_000 });
  await sleep(10);
  ring.offer(new Uint8Array([7]));
  ring.publish();
  assert.deepEqual(await pending, [ring]);
  set.delete(ring);
  // One wait at a time; a signal; bad arguments.
  pending = set.wait();
  await assert.rejects(set.wait(), (e) => e instanceof TypeError && /pending already/.test(e.message));
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stop")), 20);
  set.add(e);
  await assert.rejects(Promise.race([pending, set.wait({ signal: controller.signal })]), /pending already/);
  e.enqueue(byte);
  assert.deepEqual(await pending, [e]);
  e.dequeueDropAll();
  await assert.rejects(set.wait({ signal: controller.signal }), /stop/);
  assert.throws(() => set.add({} as Fifo), TypeError);
  await assert.rejects(set.wait({ timeoutMs: -1 }), RangeError);
  // Still armed after all that: a write wakes the next wait.
  setTimeout(() => b.enqueue(byte), 20);
  t = performance.now();
  assert.deepEqual(await set.wait({ timeoutMs: 5000 }), [b]);
  assert.ok(performance.now() - t < 4000);
  b.dequeueDropAll();
  // close(): a pending wait rejects, later calls throw, the words are let go.
  pending = set.wait();
  set.close();
  const closed = (e: unknown) => e instanceof SegmentError && e.code === "deleted" && /closed/.test(e.message);
  await assert.rejects(pending, closed);
  assert.equal(set.size, 0);
  assert.throws(() => set.add(a), closed);
  await assert.rejects(set.wait(), closed);
  assert.deepEqual([a, b, d, e].map(waiter), [0, 0, 0, 0], "no waiter word left naming this process");
  // An empty set waits for members, or its timeout.
  using empty = new WaitSet<Fifo>();
  t = performance.now();
  assert.deepEqual(await empty.wait({ timeoutMs: 50 }), []);
  assert.ok(performance.now() - t >= 40);
});

test(`WaitSet: a member's producer (${OTHER}) is SIGKILLed; the set reports it within a second, and its wait fails with peer-gone`, async () => {
  await withFifos(3, 4096, async ([quiet, doomed, other], name) => {
    const peer = startPeer(OTHER, "wake_peer", ["produce-then-hang", name, String(doomed.offset), "100"]);
    try {
      await peer.line(/^WROTE/);
      using set = new WaitSet([quiet, doomed, other]);
      assert.deepEqual(await set.wait(), [doomed]);
      assert.equal(doomed.dequeueDropAll(), 100);
      const pending = set.wait({ timeoutMs: 10_000 });
      await sleep(50);
      peer.kill("SIGKILL");
      await peer.done;
      const killed = performance.now();
      assert.deepEqual(await pending, [doomed]);
      const took = performance.now() - killed;
      assert.ok(took < 1000, `reported after ${took.toFixed(0)} ms`);
      assert.equal(doomed.peerGone, true);
      await assert.rejects(doomed.waitForData(), isCode("peer-gone"));
      assert.deepEqual(await set.wait({ timeoutMs: 0 }), [doomed], "in every result until deleted");
      set.delete(doomed);
      assert.deepEqual(await set.wait({ timeoutMs: 50 }), []);
    } finally {
      peer.kill("SIGKILL");
      await peer.done;
    }
  });
});

test("WaitSet: a member that breaks (its tail scribbled by a peer, or freed) is reported, and the others go on", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name: uniqueName("setbad"), size: 1 << 20 });
  const [a, b, c] = [1, 2, 3].map(() => segment.allocFifo(4096)!);
  const byte = new Uint8Array(1);
  using set = new WaitSet([a, b, c]);
  assert.deepEqual(await set.wait({ timeoutMs: 20 }), []);
  Atomics.store(segment.u32, (b.offset + FF_TAIL) >>> 2, 0xffffffff); // past any period
  setTimeout(() => a.enqueue(byte), 20);
  const first = await set.wait({ timeoutMs: 5000 });
  assert.ok(first.includes(b), "the broken member is reported");
  assert.throws(() => b.dequeue(new Uint8Array(1)), isCode("corrupt"));
  set.delete(b);
  if (!first.includes(a)) assert.deepEqual(await set.wait({ timeoutMs: 5000 }), [a]);
  assert.equal(a.dequeueDropAll(), 1);
  segment.freeFifo(c);
  setTimeout(() => a.enqueue(byte), 20);
  // The freed member is reported at once (its free wakes its waiters) or at the next full check
  // (every 2 s) at the latest; the write to the other one wakes the set as before.
  const seen = new Set<Fifo>();
  const t = performance.now();
  while (!(seen.has(a) && seen.has(c))) {
    assert.ok(performance.now() - t < 5000, "both reported within 5 s");
    for (const fifo of await set.wait({ timeoutMs: 5000 })) seen.add(fifo);
  }
  assert.throws(() => c.dequeue(new Uint8Array(1)), isCode("freed"));
  assert.equal(a.dequeueDropAll(), 1);
  // Its chunk allocated again, the new fifo joins the set while the freed handle is still in it.
  const again = segment.allocFifo(4096)!;
  assert.equal(again.offset, c.offset);
  set.add(again);
  set.delete(c);
  setTimeout(() => again.enqueue(byte), 20);
  assert.deepEqual(await set.wait({ timeoutMs: 5000 }), [again]);
  set.delete(again);
  assert.deepEqual(await set.wait({ timeoutMs: 50 }), []);
});

test("WaitSet: the segment of a pending wait is deleted; the wait rejects with deleted", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name: uniqueName("setdel"), size: 1 << 20 });
  const fifos = [segment.allocFifo(4096)!, segment.allocFifo(4096)!];
  using set = new WaitSet(fifos);
  const pending = set.wait({ timeoutMs: 10_000 });
  await sleep(20);
  sm.delete(segment);
  await assert.rejects(pending, isCode("deleted"));
});

test("spinMicros: a short spin before parking; out-of-range values are RangeErrors", async () => {
  using sm = new SegmentMain();
  const fifo = sm.create({ type: "shm", name: uniqueName("spin"), size: 1 << 20 }).allocFifo(4096)!;
  assert.equal(await fifo.waitForData({ spinMicros: 200, timeoutMs: 20 }), false);
  setTimeout(() => fifo.enqueue(new Uint8Array(1)), 10);
  assert.equal(await fifo.waitForData({ spinMicros: 50, timeoutMs: 5000 }), true);
  await assert.rejects(fifo.waitForData({ spinMicros: -1 }), RangeError);
  await assert.rejects(fifo.waitForData({ spinMicros: 2e6 }), RangeError);
});

test("the doorbell is an abstract socket (and, watched through node:net, a pipe and its gate): there while the SegmentMain lives, gone after, nothing in the file system", async () => {
  // A first pool's doorbell loads what the runtime loads once (node:net and the like), so that
  // the count of fds below sees only the second one's.
  const warm = new SegmentMain();
  const warmName = uniqueName("bell");
  const warmFifo = warm.create({ type: "shm", name: warmName, size: 1 << 20 }).allocFifo(4096)!;
  assert.equal(await warmFifo.waitForData({ timeoutMs: 5 }), false);
  warm[Symbol.dispose]();
  await sleep(20);
  startReaper(); // its pipe is open before any fd is counted
  const fds = () => readdirSync("/proc/self/fd").length;
  const pipes = () =>
    readdirSync("/proc/self/fd").filter((fd) => readlinkOr(`/proc/self/fd/${fd}`).startsWith("pipe:")).length;
  const fdsBefore = fds();
  const pipesBefore = pipes();
  const sm = new SegmentMain();
  const name = uniqueName("bell");
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  assert.equal(await fifo.waitForData({ timeoutMs: 5 }), false);
  const entry = (SLEEPER_TABLE + (segment.liveness.ownTag & 0xff) * SLEEPER_ENTRY_SIZE) >>> 2;
  assert.equal(segment.u32[entry + SLP_TAG / 4], segment.liveness.ownTag);
  const key = segment.u32[entry + SLP_KEY / 4].toString(16).padStart(8, "0");
  const listed = (suffix: string) =>
    readFileSync("/proc/net/unix", "utf8").split("\n").some((line) => line.endsWith(` @svm-wake-${key}${suffix}`));
  // A pipe where the socket is watched through node:net: Node and Deno (not Bun).
  const piped = RUNTIME !== "bun";
  assert.ok(listed(""), "listening while the pool lives");
  assert.equal(listed("-pipe"), piped, "the pipe's gate listens where there is a pipe");
  assert.equal(pipes() - pipesBefore, piped ? 2 : 0, "the doorbell's pipe, both ends");
  sm[Symbol.dispose]();
  await sleep(20);
  assert.equal(listed(""), false, "closed with the pool");
  assert.equal(listed("-pipe"), false, "the gate too");
  assert.equal(pipes(), pipesBefore, "the pipe too");
  assert.equal(fds(), fdsBefore, "and every other fd");
  assert.deepEqual(shmEntries(name), []);
  assert.deepEqual(shmEntries(warmName), []);
});

/** Where a /proc/self/fd link points ("" for one closed meanwhile). */
function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

/** Where this process's sleeper entry and event ring are in `segment` (u32 indices). */
function sleeperWords(segment: Segment) {
  const entry = (SLEEPER_TABLE + (segment.liveness.ownTag & 0xff) * SLEEPER_ENTRY_SIZE) >>> 2;
  const ring = segment.u32[entry + SLP_EVENTS / 4];
  assert.ok(ring > 0, "the event ring exists");
  return { entry, d: (ring + FIFO_HEADER_SIZE) >>> 2 };
}

test(`a sleeper with few waits is rung without events, one with many through its event ring; waits move between the two and each wakes (${OTHER} writes)`, async () => {
  // Fresh fifos for each step: a fifo whose writer exited ends its next wait with "peer-gone".
  await withFifos(16, 4096, async (fifos, name, segment) => {
    assert.equal(await fifos[15].waitForData({ timeoutMs: 5 }), false); // the entry and the ring exist now
    const { d } = sleeperWords(segment);
    const tail = () => segment.u32[d + EV_TAIL / 4];
    const write = (some: Fifo[]) =>
      startPeer(OTHER, "wake_peer", ["one-each", name, some.map((f) => f.offset).join(",")]);
    const wake = async (some: Fifo[]) => {
      const waits = some.map((f) => f.waitForData({ timeoutMs: 10_000 }));
      const writer = write(some);
      assert.deepEqual(await Promise.all(waits), some.map(() => true));
      expectSuccess(await writer.done, "writer");
      const word = new Uint8Array(4);
      some.forEach((f, i) => {
        assert.equal(f.dequeueExact(word), true);
        assert.equal(new DataView(word.buffer).getUint32(0, true), i);
      });
    };
    let before = tail();
    await wake(fifos.slice(0, 2));
    assert.equal(tail(), before, "two waits: the writer pushed no event");
    // Six waits: the first write finds all six pending and pushes an event (later writes may
    // find fewer left, and the hint back).
    await wake(fifos.slice(2, 8));
    assert.ok(tail() !== before, "six waits: events");
    before = tail();
    await wake(fifos.slice(8, 9));
    assert.equal(tail(), before, "one wait again: no event");
    // One wait watching six fifos: the events say which to look at.
    const six = fifos.slice(9, 15);
    const any = waitAny(six, { timeoutMs: 10_000 });
    const writer = write(six);
    const ready = await any;
    assert.ok(ready.length > 0 && ready.every((f) => f.maxDequeue === 4), "woken by data");
    expectSuccess(await writer.done, "writer");
    assert.ok(tail() !== before, "waitAny over six fifos: events");
  });
});

test("one wake-up settles every wait it finds ready, however many of the few end at once", async () => {
  // Writes from this process: one service (a microtask) for all of them, which must settle each
  // ready wait and leave the rest pending (announced), not stop when waits leave the list.
  await withFifos(4, 4096, async (fifos, _name, segment) => {
    const late = () => sleep(300).then(() => "late");
    const mark = (f: Fifo) => Atomics.load(segment.u32, (f.offset + FF_DATA_WAITER) >>> 2);
    const announced = () => fifos.filter((f) => mark(f) !== 0);
    for (const ready of [[0, 1, 2, 3], [0, 2], [3], [1, 2, 3]]) {
      const waits = fifos.map((f) => f.waitForData({ timeoutMs: 10_000 }));
      await sleep(5);
      for (const i of ready) fifos[i].enqueue(new Uint8Array([i]));
      for (const i of ready) assert.equal(await Promise.race([waits[i], late()]), true, `wait ${i} of ${ready}`);
      const rest = fifos.filter((_, i) => !ready.includes(i));
      for (const f of rest) assert.notEqual(mark(f), 0);
      for (const f of rest) f.enqueue(new Uint8Array(1));
      assert.deepEqual(await Promise.all(waits), [true, true, true, true]);
      for (const f of fifos) assert.equal(f.dequeue(new Uint8Array(2)), 1);
      await sleep(0);
      for (const f of fifos) assert.equal(mark(f), 0, "no wait left, no announcement");
    }
    // Waits that end without a write (a timeout; a waitAny woken by another fifo) withdraw their
    // announcements too, once the code they resumed has run.
    assert.deepEqual(await Promise.all(fifos.map((f) => f.waitForData({ timeoutMs: 20 }))), [
      false,
      false,
      false,
      false,
    ]);
    await sleep(0);
    assert.deepEqual(announced(), []);
    const any = waitAny(fifos, { timeoutMs: 10_000 });
    await sleep(5);
    fifos[2].enqueue(new Uint8Array(1));
    assert.deepEqual(await any, [fifos[2]]);
    await sleep(0);
    assert.deepEqual(announced(), []);
    assert.equal(fifos[2].dequeue(new Uint8Array(1)), 1);
  });
});

test(`hostile words in the sleeper table and the event ring cost a re-check, never a crash (${OTHER} writes)`, async () => {
  await withFifos(10, 4096, async ([a, b, c, e, ...others], name, segment) => {
    assert.equal(await a.waitForData({ timeoutMs: 5 }), false); // the entry and the ring exist now
    const { entry, d } = sleeperWords(segment);
    // More than a few waits pending: wakers use the ring (with a few they only set SCAN).
    const more = others.map((f) => f.waitForData({ timeoutMs: 60_000 }));
    const pending = waitAny([a, b], { timeoutMs: 10_000 });
    // Scribble: the ring's tail far ahead of its head, its slots garbage.
    segment.u32[d + 64 / 4] = 0xdead_beef;
    for (let i = 0; i < 512; i++) segment.u32[d + 192 / 4 + i] = 0xffff_fff0 - i;
    const writer = startPeer(OTHER, "wake_peer", ["one-each", name, `${a.offset},${b.offset}`]);
    const first = await pending;
    assert.ok(first.length > 0 && first.every((f) => f === a || f === b), "woken with what is ready");
    assert.equal(await b.waitForData({ timeoutMs: 10_000 }), true);
    assert.equal(await a.waitForData({ timeoutMs: 10_000 }), true);
    expectSuccess(await writer.done, "writer");
    // An entry pointing its events at garbage: the waker falls back to asking for a full re-check.
    // (A fresh fifo: the first writer, the producer of a and b, has exited, so their waits would
    // now fail with "peer-gone".)
    segment.u32[entry + SLP_EVENTS / 4] = 64;
    const again = c.waitForData({ timeoutMs: 10_000 });
    const second = startPeer(OTHER, "wake_peer", ["one-each", name, `${c.offset}`]);
    assert.equal(await again, true);
    expectSuccess(await second.done, "second writer");
    // Every flag set, with many waits pending: the writer sets SCAN and rings; the wait ends.
    const third = e.waitForData({ timeoutMs: 10_000 });
    segment.u32[entry + SLP_FLAGS / 4] = 0xffff_ffff;
    const writer3 = startPeer(OTHER, "wake_peer", ["one-each", name, `${e.offset}`]);
    assert.equal(await third, true);
    expectSuccess(await writer3.done, "third writer");
    for (const f of others) f.close();
    assert.deepEqual(await Promise.all(more), others.map(() => true), "the other waits lived through it all");
  });
});

test(`a pending wait keeps a ${OTHER} process alive like a pending read; when it ends, the process exits`, async () => {
  await withFifos(1, 4096, async ([fifo], name) => {
    const peer = startPeer(OTHER, "wake_peer", ["wait-once", name, String(fifo.offset)]);
    await peer.line(/^WAITING/);
    let ended = false;
    peer.done.then(() => (ended = true));
    await sleep(400);
    assert.equal(ended, false, "the waiting process is still there");
    fifo.enqueue(new Uint8Array(1));
    const result = await peer.done;
    expectSuccess(result, "waiter");
    assert.match(result.stdout, /"woke":true/);
  });
});

/** Each doorbell listener: Deno's libc socket + node:net with all permissions and with FFI only, Bun's, Node's. */
const WATCHERS: { label: string; runtime: "deno" | "bun" | "node"; flags: string[] }[] = [
  { label: "deno with every permission (libc socket, node:net)", runtime: "deno", flags: ["run", "--quiet", "-A"] },
  {
    label: "deno with only --allow-ffi (libc socket, node:net)",
    runtime: "deno",
    flags: ["run", "--quiet", "--allow-ffi"],
  },
  { label: "bun (Bun.listen)", runtime: "bun", flags: [] },
  { label: "node (node:net)", runtime: "node", flags: ["--no-warnings"] },
];

/**
 * Whether a process sleeps on `fifo`'s data, parked: its tag in the fifo's waiter word, and the
 * PARKED flag in its sleeper entry (a write now must ring its doorbell).
 */
function parkedOn(segment: Segment, fifo: Fifo): boolean {
  const tag = Atomics.load(segment.u32, (fifo.offset + FF_DATA_WAITER) >>> 2);
  if (tag === 0) return false;
  const entry = (SLEEPER_TABLE + (tag & 0xff) * SLEEPER_ENTRY_SIZE) >>> 2;
  return (Atomics.load(segment.u32, entry + SLP_FLAGS / 4) & SLEEPER_PARKED) !== 0;
}

/**
 * A wake_peer "wake-rounds" process of `watcher` (under `prlimit`, when given limits): it prints
 * WAITING i, sleeps on `fifo`, reads a byte, prints GOT i. `parked(i)` resolves once the peer
 * sleeps parked in its wait i (a busy machine may take it longer than any fixed pause); `wake(i)`
 * writes that byte 50 ms after that (only a ring, or the liveness tick, can wake it then) and
 * returns the milliseconds until the peer read it.
 */
function roundsPeer(
  watcher: (typeof WATCHERS)[number],
  segment: Segment,
  fifo: Fifo,
  name: string,
  rounds: number,
  prlimit?: string,
) {
  const script = `${ROOT}/tests/peers/wake_peer.ts`;
  const command = [runtimeBinary(watcher.runtime), ...watcher.flags, script, "wake-rounds", name];
  const argv = [...command, String(fifo.offset), String(rounds)];
  const child = prlimit
    ? tracked(spawn("prlimit", [prlimit, ...argv], { stdio: ["ignore", "pipe", "pipe"] }))
    : tracked(spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  let err = "";
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (err += c));
  const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
  const until = async (text: string) => {
    while (!out.includes(text)) {
      if (child.exitCode !== null) throw new Error(`the peer ended: ${err}`);
      await sleep(1);
    }
  };
  const parked = async (i: number) => {
    await until(`WAITING ${i}\n`);
    for (const end = performance.now() + 10_000; !parkedOn(segment, fifo);) {
      if (child.exitCode !== null) throw new Error(`the peer ended: ${err}`);
      if (performance.now() > end) throw new Error(`the peer did not park in its wait ${i} within 10 s`);
      await sleep(1);
    }
    await sleep(50);
  };
  return {
    until,
    parked,
    /** `through`: another handle of the fifo (another SegmentMain's: another waker). */
    wake: async (i: number, through = fifo) => {
      await parked(i);
      const start = performance.now();
      through.enqueue(new Uint8Array(1));
      await until(`GOT ${i}\n`);
      return performance.now() - start;
    },
    /** The peer's pid (prlimit runs the command in its own process). */
    pid: child.pid!,
    /** Resolves once the peer exited 0. */
    done: async () => assert.equal(await closed, 0, err),
    closed,
    kill: () => child.kill("SIGKILL"),
  };
}

const tookMs = (delays: number[]) => `wake-ups took ${delays.map((ms) => ms.toFixed(0)).join(", ")} ms`;

for (const watcher of WATCHERS) {
  const pipe = watcher.runtime !== "bun"; // Deno and Node watch through node:net, with a pipe
  test(
    `the doorbell wakes a parked wait at once: ${watcher.label}; rung through ${
      pipe ? "its pipe after the first ring" : "its socket"
    }`,
    async () => {
      // Each parked wait must be woken by the ring, not by the liveness tick (every 400 ms), which
      // would also find the event, some 350 ms later: 8 wake-ups, each within 200 ms.
      const { os, rings } = countingOs();
      await withFifos(1, 4096, async ([fifo], name, segment) => {
        const peer = roundsPeer(watcher, segment, fifo, name, 8);
        try {
          const delays: number[] = [];
          for (let i = 0; i < 8; i++) delays.push(await peer.wake(i));
          await peer.done();
          assert.ok(delays.every((ms) => ms < 200), tookMs(delays));
        } finally {
          peer.kill();
        }
      }, os);
      // The first ring goes through the socket, and the peer answers the gate when it comes; a
      // peer whose runtime's own listener watches its socket (Bun) has no pipe.
      assert.deepEqual(rings, pipe ? { socket: 1, pipe: 7, pipeErrors: [] } : { socket: 8, pipe: 0, pipeErrors: [] });
    },
  );
}

for (const watcher of WATCHERS.filter((w) => w.runtime !== "bun")) {
  test(`a sleeper (${watcher.label}) SIGKILLed after its pipe was handed over: the next ring fails with EPIPE, and the writer goes on`, async () => {
    const { os, rings } = countingOs();
    await withFifos(1, 4096, async ([fifo], name, segment) => {
      const peer = roundsPeer(watcher, segment, fifo, name, 3);
      try {
        await peer.wake(0);
        await peer.wake(1); // through the pipe
        await peer.parked(2);
        peer.kill();
        await peer.closed;
        // Its waiter word still names it and its entry is still there: this write rings the pipe.
        assert.equal(fifo.enqueue(new Uint8Array(1)), 1);
        assert.equal(fifo.enqueue(new Uint8Array(1)), 1);
      } finally {
        peer.kill();
      }
    }, os);
    assert.deepEqual(rings.pipeErrors, ["EPIPE"]);
    assert.equal(rings.pipe, 2);
  });
}

test("ringing more doorbells than the fd budget allows keeps at most the budget's lines open, and every ring arrives", () => {
  // The doorbells a waker rings are named in shared memory: a hostile peer could name one after
  // another (listening on each), and each kept line is an fd of the waker's.
  const os = loadOs();
  const hub = new WakeHub(os, openDoorbell);
  const limit = hub.admission().limit;
  const base = crypto.getRandomValues(new Uint32Array(1))[0] & 0xfff0_0000;
  const keys = Array.from({ length: limit + 40 }, (_, i) => (base + i + 1) >>> 0);
  const listeners = keys.map((key) => os.listenUnix(doorbellName(key), 4, "stream"));
  const open = () => readdirSync("/proc/self/fd").length;
  try {
    const before = open();
    for (const key of keys) hub.ring(key);
    const lines = open() - before;
    hub.ring(keys[0]); // its line was closed to make room: made again
    const byte = new Uint8Array(8);
    const got = listeners.map((listener) => {
      let bytes = 0;
      for (let conn = os.accept(listener); conn >= 0; conn = os.accept(listener)) {
        bytes += os.recvPacket(conn, byte)?.length ?? 0;
        os.close(conn);
      }
      return bytes;
    });
    assert.ok(lines <= limit, `${lines} lines kept for ${keys.length} doorbells (budget ${limit})`);
    assert.deepEqual(got, keys.map((_, i) => (i === 0 ? 2 : 1)), "every ring arrived");
  } finally {
    hub.close();
    for (const listener of listeners) os.close(listener);
  }
});

/** The doorbell key of the process other than ours that sleeps in `segment` (from its sleeper-table entry). */
function othersDoorbell(segment: Segment): number {
  for (let slot = 0; slot < 256; slot++) {
    const e = (SLEEPER_TABLE + slot * SLEEPER_ENTRY_SIZE) >>> 2;
    const tag = segment.u32[e + SLP_TAG / 4];
    if (tag !== 0 && tag !== segment.liveness.ownTag) return segment.u32[e + SLP_KEY / 4];
  }
  return 0;
}

// Deno's two permission sets watch the doorbell the same way (a libc socket, node:net): one serves here.
for (const watcher of WATCHERS.filter((w) => !w.label.includes("--allow-ffi"))) {
  test(`connections another process holds open to a sleeper's doorbell cannot run it out of fds, and rings still wake it at once: ${watcher.label}`, async () => {
    // Anyone can connect to an abstract socket. The doorbell holds at most a quarter of the
    // process's fd limit in connections, dropping the oldest of the process that holds the most.
    await withFifos(1, 4096, async ([fifo], name, segment) => {
      const peer = roundsPeer(watcher, segment, fifo, name, 8, "--nofile=128:128");
      let flood: ReturnType<typeof holdConnections> | undefined;
      const others: SegmentMain[] = [];
      try {
        await peer.parked(0);
        const key = othersDoorbell(segment);
        assert.notEqual(key, 0, "the peer's doorbell key");
        flood = holdConnections(doorbellName(key), 400);
        await flood.line(/^HELD/);
        await sleep(300); // the peer accepts the last of them
        const delays: number[] = [];
        for (let i = 0; i < 4; i++) delays.push(await peer.wake(i));
        // The flood's connections, still held: at most 96 fds in use once the peer has closed
        // what it dropped (Deno closes a dropped connection's fd a little later).
        const held = await fdsSettled(peer.pid, 96);
        // Wakers that connect now, after the flood, are heard at once too (Deno's server, which
        // accepts nothing more after the flood, is replaced at the next liveness tick). Were they
        // heard only by the tick (every 400 ms), each after the first would wait about 340 ms: it
        // writes some 60 ms after the tick that woke the one before.
        for (let i = 4; i < 8; i++) {
          const other = new SegmentMain();
          others.push(other);
          delays.push(await peer.wake(i, other.attach({ type: "shm", name }).fifoAt(fifo.offset)));
        }
        await peer.done();
        assert.ok(held <= 96, `the peer holds ${held} fds of its 128`);
        // Deno: a first ring during the flood may wait for that tick (400 ms).
        const rung = watcher.runtime === "deno" ? delays.slice(1) : delays;
        assert.ok(rung.every((ms) => ms < 200) && delays[0] < 1000, tookMs(delays));
      } finally {
        for (const other of others) other[Symbol.dispose]();
        flood?.kill();
        peer.kill();
        await flood?.done;
      }
    });
  });
}

for (const watcher of WATCHERS) {
  test(`a flood of connections that runs a process out of fds costs its doorbell at most one tick once they close: ${watcher.label}`, async () => {
    // The doorbell's listener accepts in a loop; an accept that fails (EMFILE) must not end it, or
    // a waker that connects later would be heard only by the liveness tick.
    await withFifos(1, 4096, async ([fifo], name, segment) => {
      const peer = roundsPeer(watcher, segment, fifo, name, 4, "--nofile=128:128");
      const flood: import("node:net").Socket[] = [];
      try {
        await peer.parked(0);
        const key = othersDoorbell(segment);
        assert.notEqual(key, 0, "the peer's doorbell key");
        const net = await import("node:net");
        for (let i = 0; i < 160; i++) {
          const socket = net.connect({ path: "\0" + doorbellName(key) });
          socket.on("error", () => {});
          flood.push(socket);
        }
        await sleep(300); // the peer accepts until it has no fd left
        for (const socket of flood) socket.destroy();
        await sleep(300); // and reads their ends
        const delays: number[] = [];
        for (let i = 0; i < 4; i++) delays.push(await peer.wake(i));
        await peer.done();
        // Deno's node:net server accepts nothing more after the flood; the liveness tick (400 ms)
        // accepts for it and replaces it, so there the first wake-up may wait for a tick. Every
        // later one is rung.
        const later = watcher.label.includes("--allow-ffi") ? delays.slice(1) : delays;
        assert.ok(later.every((ms) => ms < 200), tookMs(delays));
      } finally {
        for (const socket of flood) socket.destroy();
        peer.kill();
      }
    });
  });
}
