// Issue 9: each way a hostile peer or a careless caller could crash the process, shift a
// stream, lose a chunk or leave a stuck waiter, reproduced, with what must happen instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { OsError, SegmentMain } from "../mod.ts";
import {
  chunkBytes,
  FF_ALLOC_SEQ,
  FF_CAPACITY,
  FF_CHUNK_LENGTH,
  FF_CLASS,
  FF_DATA_WAITER,
  FF_MAGIC,
  FF_STATE,
  FIFO_MAGIC,
  FIFO_STATE_LIVE,
  FS_BUMP,
  FS_FREELISTS,
} from "../src/layout.ts";
import {
  expectSuccess,
  isCode,
  OTHER,
  ROOT,
  RUNTIME,
  type Runtime,
  RUNTIMES,
  scriptCommand,
  shmEntries,
  startPeer,
  uniqueName,
} from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isRoot = (process.getuid?.() ?? -1) === 0;

/** Runs a hardening peer in a mount namespace whose /dev/shm is a 2 MiB tmpfs. */
function inSmallTmpfs(runtime: Runtime, args: string[]) {
  const [bin, argv] = scriptCommand(runtime, `${ROOT}/tests/peers/hardening_peer.ts`, args);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `mount -t tmpfs -o size=2m tmpfs /dev/shm && exec ${[bin, ...argv].map(quote).join(" ")}`;
  return spawnSync("unshare", ["-m", "sh", "-c", script], { encoding: "utf8", timeout: 60_000 });
}

const canUnshare = isRoot && spawnSync("unshare", ["-m", "true"]).status === 0;

for (const runtime of RUNTIMES) {
  test(
    `1. a full /dev/shm: ${runtime}'s create fails with OsError ENOSPC instead of a later SIGBUS`,
    { skip: canUnshare ? false : "needs root and unshare(1) to mount a small tmpfs" },
    () => {
      const result = inSmallTmpfs(runtime, ["enospc", uniqueName("enospc")]);
      assert.equal(result.signal, null, `the peer died of ${result.signal}: ${result.stderr}`);
      assert.match(result.stdout, /^OSERROR posix_fallocate ENOSPC$/m, result.stdout + result.stderr);
    },
  );
}

for (const runtime of RUNTIMES) {
  const cases = [
    ["sparse", "past its header fails with OsError ENOSPC", /^OSERROR posix_fallocate ENOSPC$/m],
    ["sparse-header", "at all, its header page included, fails with 'abandoned'", /^SEGMENTERROR abandoned$/m],
  ] as const;
  for (const [mode, what, expected] of cases) {
    test(
      `1. a full /dev/shm: ${runtime}'s attach of a segment file with no pages reserved ${what}, not a SIGBUS`,
      { skip: canUnshare ? false : "needs root and unshare(1) to mount a small tmpfs" },
      () => {
        // Not this library's create (which reserves every page) but a file of holes, by a peer
        // or another tool: touching a hole on a full tmpfs is a SIGBUS.
        const result = inSmallTmpfs(runtime, [mode, uniqueName("sparse")]);
        assert.equal(result.signal, null, `the peer died of ${result.signal}: ${result.stderr}`);
        assert.match(result.stdout, expected, result.stdout + result.stderr);
      },
    );
  }
}

for (const runtime of RUNTIMES) {
  test(`3. a caller that transfers a zero-copy view's buffer cannot break or crash ${runtime}`, async () => {
    const name = uniqueName("transfer");
    try {
      const result = await startPeer(runtime, "hardening_peer", ["transfer", name]).done;
      expectSuccess(result, "transfer scenario");
      assert.match(result.stdout, /^OK/m);
      assert.deepEqual(shmEntries(name), []);
    } finally {
      // A peer that crashed (what this test guards against) could not remove its segments.
      for (const entry of shmEntries(name)) rmSync(`/dev/shm/${entry}`, { force: true });
    }
  });
}

test("4. dequeue and peek into a resizable buffer that grew after first use write every byte", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "resizable", size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  const rab = new ArrayBuffer(16, { maxByteLength: 4096 });
  const dst = new Uint8Array(rab); // tracks the buffer's length
  fifo.enqueue(new Uint8Array(16).fill(1));
  assert.equal(fifo.dequeue(dst), 16);
  rab.resize(512);
  const src = Uint8Array.from({ length: 512 }, (_, i) => (i * 7 + 3) & 0xff);
  fifo.enqueue(src);
  assert.equal(fifo.peek(0, dst), 512);
  assert.deepEqual(dst, src, "peek wrote all 512 bytes");
  dst.fill(0);
  assert.equal(fifo.dequeue(dst), 512);
  assert.deepEqual(dst, src, "dequeue wrote all 512 bytes");
  rab.resize(8);
  fifo.enqueue(src.subarray(0, 100));
  assert.equal(fifo.dequeue(dst), 8, "a shrunk buffer takes what fits");
  assert.deepEqual(dst, src.subarray(0, 8));
});

/** Views that read as empty: one whose buffer was transferred, one left out of bounds by a shrink. */
function emptiedViews(): [string, Uint8Array][] {
  const detached = new Uint8Array(8).fill(5);
  detached.buffer.transfer();
  const rab = new ArrayBuffer(16, { maxByteLength: 64 });
  const outside = new Uint8Array(rab, 0, 16);
  rab.resize(4);
  return [["transferred", detached], ["out of bounds", outside]];
}

test("4. a message whose buffer was transferred or shrunk away is an empty one: no queue, ring or fifo is wedged", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "emptied", size: 1 << 20 });
  const queue = segment.allocMessageQueue({ slots: 4, slotSize: 16 })!;
  const ring = segment.allocMessageRing(4096)!;
  const fifo = segment.allocFifo(4096)!;
  const dst = new Uint8Array(16);
  for (const [what, view] of emptiedViews()) {
    // As Web IDL reads a detached buffer: zero bytes. Before, the queue's send threw after it had
    // claimed a slot, and every later message waited behind that slot for good.
    assert.equal(queue.trySend(view), true, `queue, ${what}`);
    assert.equal(queue.trySend(Uint8Array.of(1, 2, 3)), true);
    assert.equal(queue.tryReceive(dst), 0, `the empty message first, ${what}`);
    assert.equal(queue.tryReceive(dst), 3, `then the next one, ${what}`);
    assert.equal(queue.trySend(new Uint8Array(0)), true);
    assert.equal(queue.tryReceive(view), 0, `an empty message fits an emptied dst, ${what}`);
    assert.equal(queue.trySend(Uint8Array.of(9)), true);
    assert.throws(() => queue.tryReceive(view), RangeError, `a longer one does not, ${what}`);
    assert.equal(queue.tryReceive(dst), 1, `and it stayed, ${what}`);

    assert.equal(ring.offer(view, 7), true, `ring, ${what}`);
    assert.equal(ring.offer(Uint8Array.of(4, 5), 8), true);
    await sleep(0); // a ring publishes at the end of the task
    assert.equal(ring.tryReceive(dst), 0, `the empty record first, ${what}`);
    assert.equal(ring.tryReceive(dst), 2, `then the next one, ${what}`);

    assert.equal(fifo.enqueue(view), 0, `fifo, ${what}`);
    assert.equal(fifo.enqueueExact(view), true);
    fifo.enqueue(Uint8Array.of(6));
    assert.equal(fifo.dequeue(view), 0);
    assert.equal(fifo.dequeue(dst), 1, `the fifo's byte, ${what}`);
  }
  assert.equal(queue.tryReceive(dst), -1);
});

test("4. a queue's send that waits for room reads its message when it goes: a buffer transferred meanwhile is sent empty", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "emptied-later", size: 1 << 20 });
  const queue = segment.allocMessageQueue({ slots: 1, slotSize: 16 })!;
  assert.equal(queue.trySend(Uint8Array.of(1)), true);
  const message = Uint8Array.of(2, 2);
  const waiting = queue.send(message, { timeoutMs: 5_000 });
  const after = queue.send(Uint8Array.of(3, 3, 3), { timeoutMs: 5_000 });
  message.buffer.transfer();
  const dst = new Uint8Array(16);
  assert.equal(await queue.receive(dst, { timeoutMs: 5_000 }), 1);
  assert.equal(await waiting, true);
  assert.equal(await queue.receive(dst, { timeoutMs: 5_000 }), 0, "the transferred message, empty");
  assert.equal(await after, true);
  assert.equal(await queue.receive(dst, { timeoutMs: 5_000 }), 3, "the queue goes on");
});

test("5. a second handle fails with 'freed' once its fifo was freed and the chunk reused", () => {
  const name = uniqueName("stale");
  using sm = new SegmentMain();
  using other = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const peerView = other.attach({ type: "shm", name });
  const fifo = segment.allocFifo(4096)!;
  const second = segment.fifoAt(fifo.offset);
  const peers = peerView.fifoAt(fifo.offset);
  segment.freeFifo(fifo);
  const reused = segment.allocFifo(4096)!;
  assert.equal(reused.offset, fifo.offset, "the chunk was handed out again");
  reused.enqueue(new Uint8Array([1, 2, 3]));
  for (const stale of [second, peers]) {
    assert.throws(() => stale.enqueue(new Uint8Array([9])), isCode("freed"));
    assert.throws(() => stale.dequeue(new Uint8Array(3)), isCode("freed"));
    assert.throws(() => stale.close(), isCode("freed"));
    assert.equal(stale.isLive, false);
  }
  assert.throws(() => segment.freeFifo(second), isCode("freed"));
  assert.throws(() => peerView.freeFifo(peers), isCode("freed"));
  assert.throws(() => segment.retainFifo(second), isCode("freed"));
  assert.equal(reused.maxDequeue, 3, "the new fifo is untouched");
  assert.equal(segment.allocFifo(4096)!.offset === reused.offset, false, "the chunk is not handed out twice");
  assert.deepEqual(segment.audit().lost, []);
});

test(
  "7. a fifo past 2 GiB waits, wakes and closes",
  { skip: totalMemoryGiB() < 8 ? "needs 8 GiB" : false },
  async () => {
    const name = uniqueName("big");
    using sm = new SegmentMain();
    const size = 2 ** 31 + 256 * 1024;
    const segment = sm.create({ type: "shm", name, size });
    const big = segment.allocFifo(2 ** 30)!; // fills the first GiB of the area
    const big2 = segment.allocFifo(2 ** 30 - 8192)!; // the second: what follows lies past 2 GiB
    const fifo = segment.allocFifo(4096)!;
    assert.ok(fifo.offset > 2 ** 31, `fifo at ${fifo.offset}`);
    const woken = fifo.waitForData({ timeoutMs: 5000 });
    await sleep(20);
    fifo.enqueue(new Uint8Array([42]));
    assert.equal(await woken, true);
    assert.equal(fifo.dequeue(new Uint8Array(1)), 1);
    const ended = fifo.waitForData({ timeoutMs: 5000 });
    fifo.close();
    assert.equal(await ended, true);
    assert.equal(fifo.isClosed, true);
    const space = fifo.waitForSpace(4096, { timeoutMs: 5000 });
    assert.equal(await space, true);
    segment.freeFifo(big);
    segment.freeFifo(big2);
  },
);

function totalMemoryGiB(): number {
  const line = readFileSync("/proc/meminfo", "utf8").split("\n").find((l) => l.startsWith("MemTotal:")) ?? "";
  return Number(line.replace(/\D/g, "")) / (1 << 20);
}

for (const runtime of RUNTIMES) {
  test(`8. a ${runtime} reader killed asleep does not leave every later write paying a system call`, async () => {
    const name = uniqueName("deadwaiter");
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name, size: 1 << 20 });
    const fifo = segment.allocFifo(4096)!;
    const word = (fifo.offset + FF_DATA_WAITER) >>> 2;
    const peer = startPeer(runtime, "hardening_peer", ["wait", name, String(fifo.offset)]);
    await peer.line(/^WAITING/);
    const deadline = Date.now() + 5000;
    while (Atomics.load(segment.u32, word) === 0 && Date.now() < deadline) await sleep(5);
    assert.notEqual(Atomics.load(segment.u32, word), 0, "the reader announced its sleep");
    peer.kill("SIGKILL");
    await peer.done;
    // The first write finds nobody asleep, sees the sleeper is dead and clears the word.
    fifo.enqueue(new Uint8Array(1));
    assert.equal(Atomics.load(segment.u32, word), 0, "the dead reader's mark is gone");
    fifo.dequeue(new Uint8Array(1));
  });
}

test("8. deleting a segment with a wait pending withdraws the waiter from the shared word", async () => {
  const name = uniqueName("delwaiter");
  using sm = new SegmentMain();
  using other = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  const word = (fifo.offset + FF_DATA_WAITER) >>> 2;
  const attached = other.attach({ type: "shm", name });
  const waiting = attached.fifoAt(fifo.offset).waitForData();
  await sleep(10);
  assert.notEqual(Atomics.load(segment.u32, word), 0);
  other.delete(attached);
  await assert.rejects(waiting, isCode("deleted"));
  assert.equal(Atomics.load(segment.u32, word), 0);
});

test("8. cancelling a fifo's readable ends its pending wait", async () => {
  const name = uniqueName("cancel");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const fifos = Array.from({ length: 40 }, () => segment.allocFifo(4096)!);
  const readers = fifos.map((f) => f.readable.getReader());
  const reads = readers.map((r) => r.read());
  await sleep(20);
  const waiting = () => fifos.filter((f) => Atomics.load(segment.u32, (f.offset + FF_DATA_WAITER) >>> 2) !== 0);
  assert.equal(waiting().length, 40);
  await Promise.all(readers.map((r) => r.cancel()));
  const results = await Promise.all(reads);
  assert.ok(results.every((r) => r.done));
  // Bounded, not instant: in Bun and Node each pending wait sleeps in a worker thread, and 40 of
  // them starting up take a while on two cores (the defect was that they never ended).
  const deadline = Date.now() + 10_000;
  while (waiting().length > 0 && Date.now() < deadline) await sleep(5);
  assert.equal(waiting().length, 0, "every wait ended");
});

test("9. delete() leaves alone a file that took the segment's name after it was removed", () => {
  const name = uniqueName("foreignfile");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 16 });
  rmSync(`/dev/shm/${name}`);
  writeFileSync(`/dev/shm/${name}`, "another program's data", { mode: 0o600 });
  try {
    sm.delete(segment);
    assert.equal(readFileSync(`/dev/shm/${name}`, "utf8"), "another program's data");
  } finally {
    rmSync(`/dev/shm/${name}`, { force: true });
  }
});

test("10. a freelist head pointing at a live fifo is refused, and the fifo keeps its bytes", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "hostile-freelist", size: 1 << 20 });
  const live = segment.allocFifo(4096)!;
  live.enqueue(new Uint8Array([1, 2, 3]));
  const spare = segment.allocFifo(4096)!; // the class's freelist is not empty now
  segment.freeFifo(spare);
  Atomics.store(segment.u32, FS_FREELISTS >>> 2, live.offset); // class 0's head
  assert.throws(() => segment.allocFifo(4096), isCode("corrupt"));
  assert.equal(live.maxDequeue, 3);
  assert.equal(live.isLive, true);
  const out = new Uint8Array(3);
  live.dequeue(out);
  assert.deepEqual([...out], [1, 2, 3]);
});

test("10. a bump moved back into a live chunk is refused before anything is carved there", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "hostile-bump", size: 1 << 20 });
  const live = segment.allocFifo(4096)!;
  const data = new Uint8Array(4096); // zeros: to a claim, the bytes at the bump look unclaimed
  live.enqueue(data);
  assert.ok(segment.freeBytes > 0);
  Atomics.store(segment.u32, FS_BUMP >>> 2, live.offset + 256 + 1024); // inside live's data
  assert.throws(() => segment.allocFifo(64 * 1024), isCode("corrupt"));
  const out = new Uint8Array(4096);
  assert.equal(live.peek(0, out), 4096);
  assert.deepEqual(out, data, "the live fifo's bytes are untouched");
});

test("10. a header that claims a bigger class than its chunk is refused by fifoAt, from a fresh process view", () => {
  const name = uniqueName("hostile-class");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const a = segment.allocFifo(4096)!;
  const b = segment.allocFifo(4096)!;
  b.enqueue(new Uint8Array(4096).fill(0x5a));
  using other = new SegmentMain();
  const view = other.attach({ type: "shm", name }); // walks the chunks as they are
  view.fifoAt(b.offset);
  // A consistent lie: a's header now says class 1 (8 KiB), its chunk swallowing b.
  const w = a.offset >>> 2;
  Atomics.store(segment.u32, w + FF_CLASS / 4, 1);
  Atomics.store(segment.u32, w + FF_CHUNK_LENGTH / 4, chunkBytes(1));
  Atomics.store(segment.u32, w + FF_CAPACITY / 4, 8192);
  assert.throws(() => view.fifoAt(a.offset), isCode("corrupt"));
  assert.equal(view.fifoAt(b.offset).maxDequeue, 4096, "b is still where the index says");
});

test("10. an offset inside a fifo's data with a forged header is no fifo", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "forged-inner", size: 1 << 20 });
  const a = segment.allocFifo(8192)!;
  const inner = a.offset + 256 + 1024;
  const w = inner >>> 2;
  Atomics.store(segment.u32, w + FF_CHUNK_LENGTH / 4, chunkBytes(0));
  Atomics.store(segment.u32, w + FF_MAGIC / 4, FIFO_MAGIC);
  Atomics.store(segment.u32, w + FF_STATE / 4, FIFO_STATE_LIVE);
  Atomics.store(segment.u32, w + FF_CAPACITY / 4, 100);
  Atomics.store(segment.u32, w + FF_ALLOC_SEQ / 4, 12345);
  assert.throws(() => segment.fifoAt(inner), RangeError);
});

test("10. an offset at or past the segment's end, or one that aliases a fifo modulo 2^32, is no fifo, ring or queue", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "far-offsets", size: 1 << 20 });
  const fifo = segment.allocFifo(1000)!;
  const ring = segment.allocMessageRing(1024)!;
  const queue = segment.allocMessageQueue({ slots: 4, slotSize: 16 })!;
  const lookups: [string, (offset: number) => unknown, number][] = [
    ["fifo", (offset) => segment.fifoAt(offset), fifo.offset],
    ["message ring", (offset) => segment.messageRingAt(offset), ring.offset],
    ["message queue", (offset) => segment.messageQueueAt(offset), queue.offset],
  ];
  for (const [what, lookup, real] of lookups) {
    for (
      const offset of [segment.size, segment.size - 64, segment.size + 64, 2 ** 31, 2 ** 32 + real, 2 ** 40 + real]
    ) {
      assert.throws(
        () => lookup(offset),
        (e: unknown) => e instanceof RangeError && e.message.startsWith(`no live ${what} at offset ${offset}`),
        `${what} at ${offset}`,
      );
    }
  }
});

test(`11. a ${OTHER} creator killed before ready: attach fails at once with 'abandoned', show --clean removes it`, async () => {
  const name = uniqueName("abandoned");
  const peer = startPeer(OTHER, "segment_peer", ["slow-create", name, "60000"]);
  try {
    await peer.line(/^OPENED/);
    using sm = new SegmentMain({ timeoutSeconds: 0.5 });
    assert.throws(() => sm.attach({ type: "shm", name }), isCode("timeout"), "alive: we wait");
    peer.kill("SIGKILL");
    await peer.done;
    using patient = new SegmentMain({ timeoutSeconds: 20 });
    const started = performance.now();
    assert.throws(() => patient.attach({ type: "shm", name }), isCode("abandoned"));
    assert.ok(performance.now() - started < 500, "at once, not after the timeout");
    const [bin, argv] = scriptCommand(RUNTIME, `${ROOT}/cli.ts`, ["show", "--clean"]);
    const out = execFileSync(bin, argv, { encoding: "utf8" });
    assert.match(out, new RegExp(`${name}: abandoned`));
    assert.deepEqual(shmEntries(name), []);
  } finally {
    peer.kill();
    await peer.done;
    rmSync(`/dev/shm/${name}`, { force: true });
  }
});

test("11. a FIFO or a directory under the name fails at once with 'not-a-file'", () => {
  const name = uniqueName("notafile");
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  execFileSync("mkfifo", [`/dev/shm/${name}`]);
  try {
    const started = performance.now();
    assert.throws(() => sm.attach({ type: "shm", name }), isCode("not-a-file"));
    assert.ok(performance.now() - started < 500);
  } finally {
    rmSync(`/dev/shm/${name}`, { force: true });
  }
  assert.equal(sm.size, 0);
});

test("11. a segment open to others or owned by another user is refused unless allowed", () => {
  const name = uniqueName("foreign");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 16 });
  using other = new SegmentMain();
  chmodSync(`/dev/shm/${name}`, 0o666);
  assert.throws(() => other.attach({ type: "shm", name }), isCode("untrusted"));
  other.delete(other.attach({ type: "shm", name, allowForeign: true }));
  chmodSync(`/dev/shm/${name}`, 0o600);
  if (isRoot) {
    chownSync(`/dev/shm/${name}`, 65534, 65534);
    assert.throws(() => other.attach({ type: "shm", name }), isCode("untrusted"));
    chownSync(`/dev/shm/${name}`, 0, 0);
  }
  other.delete(other.attach({ type: "shm", name }));
  assert.equal(other.size, 0);
  sm.delete(segment);
});

test("12. a view of a second mapping of the same segment is refused as a source or destination", () => {
  const name = uniqueName("alias");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const second = sm.attach({ type: "shm", name });
  const fifo = segment.allocFifo(4096)!;
  const viaSecond = second.fifoAt(fifo.offset);
  fifo.enqueue(new Uint8Array(64));
  const ownLent = fifo.readSegments()[0]; // a lent buffer over the same memory
  const otherMapping = viaSecond.readSegments()[0];
  for (const view of [ownLent, otherMapping]) {
    assert.throws(() => fifo.enqueue(view), TypeError);
    assert.throws(() => fifo.dequeue(view), TypeError);
    assert.throws(() => fifo.peek(0, view), TypeError);
  }
  // A view of another segment's memory is a legitimate zero-copy source.
  const elsewhere = sm.create({ type: "private", name: "elsewhere", size: 1 << 16 });
  const src = elsewhere.allocFifo(4096)!;
  src.enqueue(new Uint8Array(10).fill(3));
  assert.equal(fifo.enqueue(src.readSegments()[0]), 10);
  // Fresh views of a buffer that passed pass without asking the mappings again (the rest of a
  // partial write); views of the segment are still refused in between, fresh ones included.
  const mine = new Uint8Array(256).fill(7);
  const into = new Uint8Array(256);
  for (let i = 0; i < 3; i++) {
    assert.equal(fifo.enqueue(mine.subarray(i, i + 8)), 8);
    assert.equal(fifo.dequeue(into.subarray(i, i + 4)), 4);
    for (const view of [ownLent.subarray(i), otherMapping.subarray(i), src.readSegments()[0].subarray(0, 0)]) {
      if (view.byteLength === 0) continue;
      assert.throws(() => fifo.enqueue(view), TypeError);
      assert.throws(() => fifo.dequeue(view), TypeError);
    }
  }
  const ring = segment.allocMessageRing(4096)!;
  const queue = segment.allocMessageQueue({ slots: 8, slotSize: 64 })!;
  for (let i = 0; i < 3; i++) {
    assert.equal(ring.offer(mine.subarray(i, i + 8)), true);
    assert.throws(() => ring.offer(ring.bytes.subarray(i, i + 8)), TypeError);
    assert.throws(() => ring.offer(otherMapping.subarray(i)), TypeError);
    assert.equal(queue.trySend(mine.subarray(i, i + 8)), true);
    assert.throws(() => queue.trySend(otherMapping.subarray(i, i + 8)), TypeError);
    assert.throws(() => queue.tryReceive(ownLent.subarray(i)), TypeError);
    assert.equal(queue.tryReceive(into.subarray(i)), 8);
  }
});

test("12. OsError names every errno, e.g. ELOOP for a symlink under the segment's name", () => {
  assert.equal(new OsError("open", 40).code, "ELOOP");
  assert.equal(new OsError("x", 95).code, "ENOTSUP");
  const name = uniqueName("link");
  symlinkSync("/etc/hostname", `/dev/shm/${name}`);
  try {
    using sm = new SegmentMain();
    assert.throws(() => sm.attach({ type: "shm", name }), (e: unknown) => e instanceof OsError && e.code === "ELOOP");
  } finally {
    rmSync(`/dev/shm/${name}`, { force: true });
  }
  assert.equal(existsSync("/etc/hostname"), true);
});

test(`removeStale: a service at start removes what crashed ${OTHER} creators left, and nothing else`, async () => {
  const prefix = uniqueName("stale");
  const live = `${prefix}-live`;
  using sm = new SegmentMain();
  const mine = sm.create({ type: "shm", name: live, size: 1 << 16 });
  // A creator killed after it finished, and one killed before it was ready.
  const finished = startPeer(OTHER, "segment_peer", ["create", "shm", `${prefix}-crashed`]);
  const unready = startPeer(OTHER, "segment_peer", ["slow-create", `${prefix}-unready`, "60000"]);
  writeFileSync(`/dev/shm/${prefix}-other`, "not a segment", { mode: 0o600 });
  try {
    await finished.line(/^READY/);
    await unready.line(/^OPENED/);
    finished.kill("SIGKILL");
    unready.kill("SIGKILL");
    await Promise.all([finished.done, unready.done]);
    assert.deepEqual(sm.removeStale({ prefix }), [`${prefix}-crashed`, `${prefix}-unready`]);
    assert.deepEqual(shmEntries(prefix).sort(), [`${prefix}-live`, `${prefix}-other`]);
    assert.equal(mine.creatorAlive, true);
    assert.deepEqual(sm.removeStale({ prefix }), [], "nothing more");
  } finally {
    finished.kill();
    unready.kill();
    for (const entry of shmEntries(prefix)) if (entry !== live) rmSync(`/dev/shm/${entry}`, { force: true });
  }
  sm.delete(mine);
});
