// Sleeping instead of spinning: waits that resolve on data or space from another process (of
// the other runtime), timeouts, cancellation, no lost wake-up, idle CPU, and web streams.
import { test } from "node:test";
import { Readable } from "node:stream";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type Fifo, SegmentError, SegmentMain, waitAny, WaitSet } from "../mod.ts";
import { FF_DATA_WAITER } from "../src/layout.ts";
import {
  expectSuccess,
  OTHER,
  pattern,
  patternByte,
  RUNTIME,
  shmEntries,
  startPeer,
  tempPath,
  uniqueName,
} from "./helpers.ts";
import { consumeSleeping, produceBursts } from "./peers/wait_sides.ts";

/** A shm segment with one fifo, removed when the callback ends. */
async function withFifo(
  size: number,
  run: (fifo: Fifo, name: string, sm: SegmentMain) => Promise<void>,
): Promise<void> {
  const name = uniqueName("wait");
  const sm = new SegmentMain();
  try {
    const fifo = sm.create({ type: "shm", name, size: 4 << 20 }).allocFifo(size)!;
    await run(fifo, name, sm);
  } finally {
    sm[Symbol.dispose]();
  }
  assert.deepEqual(shmEntries(name), []);
}

function peerResult(stdout: string) {
  return JSON.parse(stdout.split("DONE ")[1]);
}

test(`wait, then data from a ${OTHER} process: resolves, and timers keep running meanwhile`, async () => {
  await withFifo(4096, async (fifo, name) => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const peer = startPeer(OTHER, "wait_peer", ["write-after", name, String(fifo.offset), "300", "10"]);
    try {
      const start = performance.now();
      assert.equal(await fifo.waitForData({ timeoutMs: 20_000 }), true);
      const waited = performance.now() - start;
      assert.equal(fifo.maxDequeue, 10);
      assert.ok(waited >= 100, `resolved after ${waited} ms, before the peer wrote`);
      assert.ok(ticks >= 10, `the event loop ran ${ticks} timer ticks during the wait`);
      expectSuccess(await peer.done, "writer");
    } finally {
      clearInterval(timer);
      peer.kill();
      await peer.done;
    }
  });
});

test("data, then wait: resolves at once; sync variants too", async () => {
  await withFifo(4096, async (fifo) => {
    fifo.enqueue(new Uint8Array(3));
    const start = performance.now();
    assert.equal(await fifo.waitForData(), true);
    assert.equal(fifo.waitForDataSync(), true);
    assert.equal(await fifo.waitForSpace(4093), true);
    assert.equal(fifo.waitForSpaceSync(4093), true);
    assert.ok(performance.now() - start < 500);
  });
});

test("timeouts: async and sync waits give up in time and answer false", async () => {
  await withFifo(4096, async (fifo) => {
    for (
      const wait of [
        () => fifo.waitForData({ timeoutMs: 150 }),
        () => Promise.resolve(fifo.waitForDataSync({ timeoutMs: 150 })),
      ]
    ) {
      const start = performance.now();
      assert.equal(await wait(), false);
      const took = performance.now() - start;
      assert.ok(took >= 140 && took < 2000, `took ${took} ms`);
    }
    fifo.enqueue(new Uint8Array(4096));
    assert.equal(await fifo.waitForSpace(1, { timeoutMs: 50 }), false);
    assert.equal(fifo.waitForSpaceSync(1, { timeoutMs: 50 }), false);
    assert.throws(() => fifo.waitForSpaceSync(4097), RangeError);
    await assert.rejects(() => fifo.waitForData({ timeoutMs: -1 }), RangeError);
  });
});

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const still = Symbol("pending");
  const outcome = await Promise.race([
    promise.then(() => "settled", () => "settled"),
    new Promise<symbol>((r) => setTimeout(() => r(still), ms)),
  ]);
  return outcome === still;
}

test("a timeout longer than a timer can hold (2^31 ms and more, Infinity) waits like none: every waiting call", async () => {
  // A timer of 2^31 ms or more fires at once (Node warns, Deno and Bun say nothing): such a
  // timeout must not end a call after a millisecond.
  for (const timeoutMs of [2 ** 31, Number.MAX_VALUE, Infinity]) {
    const label = (what: string) => `${what}, timeoutMs ${timeoutMs}`;
    const long = { timeoutMs };
    using sm = new SegmentMain();
    for (const type of ["shm", "private"] as const) {
      const segment = type === "shm"
        ? sm.create({ type, name: uniqueName("long"), size: 1 << 20 })
        : sm.create({ type, name: uniqueName("long"), size: 1 << 20 });
      const fifo = segment.allocFifo(4096)!;
      const waits: [string, Promise<unknown>][] = [
        [`${type} waitForData`, fifo.waitForData(long)],
        [`${type} waitAny`, waitAny([fifo], long)],
        [`${type} WaitSet.wait`, new WaitSet([fifo]).wait(long)],
      ];
      const ring = segment.allocMessageRing(4096)!;
      waits.push([`${type} ring waitForData`, ring.waitForData(long)]);
      for (const [what, wait] of waits) assert.ok(await pendingAfter(wait, 30), label(what));
      fifo.enqueue(Uint8Array.of(1));
      assert.ok(ring.offer(Uint8Array.of(1)));
      for (const [what, wait] of waits) assert.ok(await wait, label(what));
      // A queue's receive and send queued behind one that waits with no timeout.
      const queue = segment.allocMessageQueue({ slots: 1, slotSize: 8 })!;
      const dst = new Uint8Array(8);
      const first = queue.receive(dst);
      const queued = queue.receive(new Uint8Array(8), long);
      assert.ok(await pendingAfter(queued, 30), label(`${type} queue receive queued`));
      await queue.send(Uint8Array.of(1));
      await queue.send(Uint8Array.of(2));
      assert.equal(await first, 1);
      assert.equal(await queued, 1, label(`${type} queue receive queued`));
      await queue.send(Uint8Array.of(3)); // full now
      const sendWaits = queue.send(Uint8Array.of(4));
      const sendQueued = queue.send(Uint8Array.of(5), long);
      assert.ok(await pendingAfter(sendQueued, 30), label(`${type} queue send queued`));
      for (let i = 3; i <= 5; i++) {
        assert.equal(await queue.receive(dst), 1);
        assert.equal(dst[0], i);
      }
      assert.equal(await sendWaits, true);
      assert.equal(await sendQueued, true, label(`${type} queue send queued`));
    }
    // A connection's receive and send queued behind one that waits with no timeout.
    const name = uniqueName("long-conn");
    using listener = await sm.listen(name, { fifoSize: 4096 });
    using client = await sm.connect(name, long);
    using server = (await listener.accept())!;
    const first = server.receive();
    const queued = server.receive(long);
    assert.ok(await pendingAfter(queued, 30), label("connection receive queued"));
    await client.send(Uint8Array.of(1));
    await client.send(Uint8Array.of(2));
    assert.deepEqual(await first, Uint8Array.of(1));
    assert.deepEqual(await queued, Uint8Array.of(2), label("connection receive queued"));
    const big = new Uint8Array(1000);
    while (client.tx.maxEnqueue >= 4 + big.length) await client.send(big);
    while (client.tx.maxEnqueue >= 4 + 1) await client.send(Uint8Array.of(0));
    const sendWaits = client.send(Uint8Array.of(9));
    const sendQueued = client.send(Uint8Array.of(7), long);
    assert.ok(await pendingAfter(sendQueued, 30), label("connection send queued"));
    let last: Uint8Array | null;
    do last = await server.receive(); while (last!.length === big.length || last![0] === 0);
    assert.deepEqual(last, Uint8Array.of(9));
    assert.deepEqual(await server.receive(), Uint8Array.of(7), label("connection send queued"));
    await sendWaits;
    await sendQueued;
  }
});

test("a spin longer than the timeout ends at the timeout: every waiting call", async () => {
  // spinMicros of a second, timeoutMs of 20: the call answers "timed out" after about 20 ms, not a second.
  const options = { timeoutMs: 20, spinMicros: 1_000_000 };
  using sm = new SegmentMain();
  for (const type of ["shm", "private"] as const) {
    const segment = sm.create({ type, name: uniqueName("spin-timeout"), size: 1 << 20 });
    const fifo = segment.allocFifo(4096)!;
    const ring = segment.allocMessageRing(4096)!;
    const queue = segment.allocMessageQueue({ slots: 1, slotSize: 8 })!;
    const full = segment.allocFifo(4096)!;
    full.enqueue(new Uint8Array(4096));
    const calls: [string, () => Promise<unknown>][] = [
      ["waitForData", () => fifo.waitForData(options)],
      ["waitForSpace", () => full.waitForSpace(1, options)],
      ["waitAny", () => waitAny([fifo], options)],
      ["WaitSet.wait", () => new WaitSet([fifo]).wait(options)],
      ["ring waitForData", () => ring.waitForData(options)],
      ["queue receive", () => queue.receive(new Uint8Array(8), options)],
    ];
    for (const [what, call] of calls) {
      const start = performance.now();
      const outcome = await call();
      const took = performance.now() - start;
      assert.ok(outcome === false || outcome === -1 || (Array.isArray(outcome) && outcome.length === 0), what);
      assert.ok(took < 500, `${type} ${what} took ${took.toFixed(0)} ms`);
    }
  }
});

test("waitForSpace: a full fifo waits until a process of the other runtime drains it", async () => {
  await withFifo(4096, async (fifo, name) => {
    fifo.enqueue(new Uint8Array(4096));
    const peer = startPeer(OTHER, "wait_peer", ["drain-after", name, String(fifo.offset), "200"]);
    try {
      assert.equal(await fifo.waitForSpace(4096, { timeoutMs: 20_000 }), true);
      expectSuccess(await peer.done, "drainer");
      assert.equal(peerResult((await peer.done).stdout).dropped, 4096);
    } finally {
      peer.kill();
      await peer.done;
    }
  });
});

test("options are checked alike whether or not the call waits: a wrong type is a TypeError, an aborted signal does nothing", async () => {
  for (const type of ["private", "shm"] as const) {
    const name = uniqueName("options");
    const sm = new SegmentMain();
    try {
      const segment = sm.create({ type, name, size: 1 << 20 });
      const fifo = segment.allocFifo(4096)!;
      const ring = segment.allocMessageRing(4096)!;
      const queue = segment.allocMessageQueue({ slots: 4, slotSize: 16 })!;
      fifo.enqueue(Uint8Array.of(1)); // ready: the calls below would not wait
      const bad = [{ timeoutMs: "5" }, { timeoutMs: true }, { spinMicros: "5" }, { signal: {} }, { signal: "x" }, 7];
      for (const options of bad) {
        const o = options as never;
        await assert.rejects(fifo.waitForData(o), TypeError, `waitForData ${JSON.stringify(options)}`);
        await assert.rejects(waitAny([fifo], o), TypeError, `waitAny ${JSON.stringify(options)}`);
        const set = new WaitSet([fifo]);
        await assert.rejects(set.wait(o), TypeError, `WaitSet ${JSON.stringify(options)}`);
        set.close();
        await assert.rejects(ring.waitForSpace(8, o), TypeError, `ring.waitForSpace ${JSON.stringify(options)}`);
        await assert.rejects(queue.send(Uint8Array.of(2), o), TypeError, `queue.send ${JSON.stringify(options)}`);
        await assert.rejects(
          queue.receive(new Uint8Array(16), o),
          TypeError,
          `queue.receive ${JSON.stringify(options)}`,
        );
      }
      assert.throws(() => fifo.waitForDataSync({ timeoutMs: "5" as never }), TypeError);
      assert.equal(queue.size, 0, "no bad call sent anything");
      // null options are no options (here: ready at once).
      assert.deepEqual(await waitAny([fifo], null as never), [fifo]);
      using set = new WaitSet([fifo]);
      assert.deepEqual(await set.wait(null as never), [fifo]);
      assert.equal(await fifo.waitForData(null as never), true);
      assert.equal(await ring.waitForSpace(8, null as never), true);
      // An aborted signal: rejects with its reason, having sent or taken nothing.
      const aborted = { signal: AbortSignal.abort(new Error("already")) };
      await assert.rejects(queue.send(Uint8Array.of(3), aborted), /already/);
      assert.equal(queue.size, 0);
      assert.equal(queue.trySend(Uint8Array.of(4)), true);
      await assert.rejects(queue.receive(new Uint8Array(16), aborted), /already/);
      assert.equal(queue.size, 1, "the message stayed");
      // Lengths: numbers only.
      await assert.rejects(ring.waitForSpace("8" as never), TypeError);
      await assert.rejects(ring.waitForSpace(8.5), RangeError);
      assert.throws(() => fifo.writeSegments("3" as never), TypeError);
    } finally {
      sm[Symbol.dispose]();
    }
    assert.deepEqual(shmEntries(name), []);
  }
});

test("abort: a pending wait rejects with the reason; 300 cancelled waits leave no waiter behind", async () => {
  await withFifo(4096, async (fifo, _name, sm) => {
    const controller = new AbortController();
    const pending = fifo.waitForData({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("enough")), 30);
    await assert.rejects(pending, /enough/);
    await assert.rejects(fifo.waitForData({ signal: AbortSignal.abort(new Error("already")) }), /already/);
    const segment = [...sm][0];
    const waitersWord = (fifo.offset + FF_DATA_WAITER) / 4;
    const threadsBefore = threads();
    for (let i = 0; i < 300; i++) {
      const c = new AbortController();
      const p = fifo.waitForData({ signal: c.signal });
      c.abort();
      await assert.rejects(p);
    }
    assert.equal(Atomics.load(segment.i32, waitersWord), 0, "every cancelled wait withdrew its announcement");
    assert.ok(threads() - threadsBefore < 8, `threads grew from ${threadsBefore} to ${threads()}`);
    fifo.enqueue(new Uint8Array(1));
    assert.equal(await fifo.waitForData({ timeoutMs: 1000 }), true, "waits still work afterwards");
  });
});

test("several waits on one fifo: those that end (timeout, abort) leave the others announced, which wake on the next write", async () => {
  await withFifo(4096, async (fifo, _name, sm) => {
    const segment = [...sm][0];
    const word = (fifo.offset + FF_DATA_WAITER) >>> 2;
    for (let round = 0; round < 3; round++) {
      const stays = fifo.waitForData();
      const timesOut = fifo.waitForData({ timeoutMs: 20 });
      const controller = new AbortController();
      const aborted = fifo.waitForData({ signal: controller.signal });
      controller.abort(new Error("gone"));
      await assert.rejects(aborted, /gone/);
      assert.equal(await timesOut, false);
      assert.notEqual(Atomics.load(segment.i32, word), 0, "the remaining wait is still announced");
      // Without the announcement the write would not wake it; the full re-check comes only after 2 s.
      fifo.enqueue(new Uint8Array(1));
      const woke = await Promise.race([stays, new Promise((r) => setTimeout(() => r("late"), 1000))]);
      assert.equal(woke, true, `round ${round}: the remaining wait woke on the write`);
      assert.equal(Atomics.load(segment.i32, word), 0, "nobody is announced once every wait ended");
      assert.equal(fifo.dequeue(new Uint8Array(1)), 1);
    }
  });
});

/** Threads of this process, from /proc. */
function threads(): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
}

test("deleting a segment ends its pending waits with a 'deleted' error", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name: uniqueName("delwait"), size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  const pending = fifo.waitForData();
  setTimeout(() => sm.delete(segment), 30);
  const start = performance.now();
  await assert.rejects(pending, (e: unknown) => e instanceof SegmentError && e.code === "deleted");
  assert.ok(performance.now() - start < 900, "ended by the delete, not by a wait slice");
});

test("an idle sleeping consumer uses almost no CPU", async () => {
  await withFifo(4096, async (fifo) => {
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    assert.equal(await fifo.waitForData({ timeoutMs: 1000 }), false);
    const wall = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.ok(cpuMs < wall / 4, `spent ${cpuMs.toFixed(1)} ms of CPU in ${wall.toFixed(0)} ms idle`);
  });
});

for (const [producer, consumer] of [[OTHER, RUNTIME], [RUNTIME, OTHER]] as const) {
  test(`no lost wake-up: ${producer} writes 64 MiB in bursts with idle gaps, ${consumer} sleeps between them`, async () => {
    const total = 64 << 20;
    await withFifo(64 * 1024, async (fifo, name) => {
      const args = [String(fifo.offset), String(total), "5"];
      const peer = producer === OTHER
        ? startPeer(OTHER, "wait_peer", ["bursts", name, ...args], 300_000)
        : startPeer(OTHER, "wait_peer", ["consume-sleeping", name, String(fifo.offset), String(total)], 300_000);
      try {
        const mine = producer === OTHER ? await consumeSleeping(fifo, total) : await produceBursts(fifo, total, 5);
        const result = await peer.done;
        expectSuccess(result, "peer");
        const consumed = producer === OTHER ? mine : peerResult(result.stdout);
        const produced = producer === OTHER ? peerResult(result.stdout) : mine;
        assert.equal(produced.sent, total);
        assert.equal(consumed.got, total, "every byte arrived");
        assert.equal(consumed.bad, 0, "every byte intact");
        assert.ok(consumed.sleeps > 100, `the consumer slept ${consumed.sleeps} times`);
        assert.ok(consumed.longestMs < 900, `longest sleep ${consumed.longestMs.toFixed(0)} ms: a wake-up was lost`);
      } finally {
        peer.kill();
        await peer.done;
      }
    });
  });
}

for (const [writer, reader] of [[RUNTIME, OTHER], [OTHER, RUNTIME]] as const) {
  test(`streams: ${writer} pipes a 48 MiB file into fifo.writable, ${reader} reads fifo.readable`, async () => {
    const file = tempPath("stream", ".bin");
    const data = new Uint8Array(48 << 20);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff, data[i + 7] = i % 251;
    writeFileSync(file, data);
    const expected = createHash("sha256").update(data).digest("hex");
    try {
      await withFifo(256 * 1024, async (fifo, name) => {
        const where = [name, String(fifo.offset)];
        const peer = startPeer(
          OTHER,
          "wait_peer",
          writer === OTHER ? ["pipe-in", ...where, file] : ["pipe-out", ...where],
          300_000,
        );
        try {
          let mine: { bytes: number; sha256: string } | undefined;
          if (writer === RUNTIME) {
            const readable = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
            await readable.pipeTo(fifo.writable);
          } else {
            const hash = createHash("sha256");
            let bytes = 0;
            await fifo.readable.pipeTo(
              new WritableStream({ write: (c: Uint8Array) => void (hash.update(c), (bytes += c.length)) }),
            );
            mine = { bytes, sha256: hash.digest("hex") };
          }
          const result = await peer.done;
          expectSuccess(result, "peer");
          const got = mine ?? peerResult(result.stdout);
          assert.deepEqual(got, { bytes: data.length, sha256: expected });
          assert.equal(fifo.isClosed, true);
        } finally {
          peer.kill();
          await peer.done;
        }
      });
    } finally {
      rmSync(file, { force: true });
    }
  });
}

test("streams in one process: back pressure, end of stream after close, private segment", async () => {
  using sm = new SegmentMain();
  const fifo = sm.create({ type: "private", name: "streams", size: 1 << 20 }).allocFifo(1000)!;
  const writer = fifo.writable.getWriter();
  const big = new Uint8Array(5000).map((_, i) => i & 0xff);
  let written = false;
  const write = writer.write(big).then(() => (written = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(written, false, "the write waits for room");
  assert.equal(fifo.maxDequeue, 1000);
  const reader = fifo.readable.getReader();
  const got: number[] = [];
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      got.push(...value);
    }
  })();
  await write;
  await writer.close();
  await reading;
  assert.deepEqual(got, [...big]);
  assert.equal(fifo.isClosed, true);
});

test("a stream's default read takes what is readable, in a new array of its size: no spare memory behind a small chunk, up to 1 MiB at once", async () => {
  using sm = new SegmentMain();
  const fifo = sm.create({ type: "private", name: "chunks", size: 16 << 20 }).allocFifo(4 << 20)!;
  const reader = fifo.readable.getReader();
  fifo.enqueue(pattern(new Uint8Array(100), 0));
  const small = (await reader.read()).value!;
  assert.deepEqual(small, pattern(new Uint8Array(100), 0));
  assert.equal(small.buffer.byteLength, 100, "a consumer that keeps small chunks keeps only their bytes");
  const big = 3 << 20;
  assert.equal(fifo.enqueue(pattern(new Uint8Array(big), 100)), big);
  let first = true;
  for (let at = 100; at < 100 + big;) {
    const chunk = (await reader.read()).value!;
    if (first) assert.equal(chunk.length, 1 << 20, "a megabyte at once when that much is readable");
    first = false;
    assert.equal(chunk.buffer.byteLength, chunk.length);
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== patternByte(at + i)) assert.fail(`byte ${at + i}`);
    at += chunk.length;
  }
});

test("a BYOB reader's buffer is filled in place; the stream ends after close, and errors 'aborted' after the data", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "byob", size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  const reader = fifo.readable.getReader({ mode: "byob" });
  fifo.enqueue(pattern(new Uint8Array(40), 0));
  let buffer = new Uint8Array(16);
  const got: number[] = [];
  for (const expect of [16, 16, 8]) {
    const { value } = await reader.read(buffer);
    assert.equal(value!.length, expect);
    got.push(...value!);
    buffer = new Uint8Array(value!.buffer); // the same memory, handed back to the reader
  }
  assert.deepEqual(got, [...pattern(new Uint8Array(40), 0)]);
  const pending = reader.read(buffer);
  await new Promise((r) => setTimeout(r, 20));
  fifo.enqueue(new Uint8Array([7]));
  const { value: late } = await pending;
  assert.deepEqual([...late!], [7], "a read that waited gets what came");
  fifo.close();
  assert.equal((await reader.read(new Uint8Array(late!.buffer))).done, true);

  const aborted = segment.allocFifo(4096)!;
  const reader2 = aborted.readable.getReader({ mode: "byob" });
  aborted.enqueue(new Uint8Array([1, 2, 3, 4, 5]));
  aborted.abort();
  const { value: last } = await reader2.read(new Uint8Array(16));
  assert.deepEqual([...last!], [1, 2, 3, 4, 5], "the data before the abort is read first");
  await assert.rejects(
    reader2.read(new Uint8Array(16)),
    (e: unknown) => e instanceof SegmentError && e.code === "aborted",
  );
});
