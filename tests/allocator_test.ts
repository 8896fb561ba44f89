// Fifo segments: allocation, freeing, preallocation, discovery and accounting; the reference's
// test programs (hello world, master/slave, mempig, offset); a two-runtime stress and a kill test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Fifo, type Segment, SegmentError, SegmentMain } from "../mod.ts";
import { expectSuccess, OTHER, running, RUNTIME, RUNTIMES, shmEntries, startPeer, uniqueName } from "./helpers.ts";
import { churn } from "./peers/churn.ts";
import { FIFO_AREA_START } from "../src/layout.ts";

const KiB = 1024;

/** Checks the allocator's books by walking every chunk and every freelist. */
function audit(segment: Segment) {
  const chunks = segment.chunks();
  const live = chunks.filter((c) => c.state === 2).length;
  const free = chunks.filter((c) => c.state === 1).length;
  const unformatted = chunks.filter((c) => c.state === 0).length;
  return {
    chunks: chunks.length,
    live,
    free,
    unformatted,
    onFreelists: segment.numFreeFifos(),
    numFifos: segment.numFifos,
  };
}

test("hello world: a string enqueued until full and dequeued, twice to force a wrap", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "hello", size: 256 * KiB });
  const fifo = segment.allocFifo(4096, "rx")!;
  const hello = new TextEncoder().encode("Hello, world! ");
  for (let round = 0; round < 2; round++) {
    let written = 0;
    for (;;) {
      const n = fifo.enqueue(hello);
      written += n;
      if (n < hello.length) break;
    }
    assert.equal(written, 4096);
    assert.equal(fifo.isFull, true);
    const out = new Uint8Array(4096);
    assert.equal(fifo.dequeue(out), 4096);
    // Every round writes the string from its start, whatever the ring's phase.
    assert.equal(new TextDecoder().decode(out), "Hello, world! ".repeat(293).slice(0, 4096), `round ${round}`);
    assert.equal(fifo.isEmpty, true);
    fifo.enqueue(hello.subarray(0, 7)); // shift the phase so the second round wraps mid-string
    fifo.dequeueDrop(7);
  }
});

test("allocFifo: exact capacity from the smallest class, batches, null when full, bad sizes throw", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "alloc", size: 1 << 20 });
  const a = segment.allocFifo(5000, "rx")!;
  assert.equal(a.size, 5000);
  assert.equal(a.list, "rx");
  assert.ok(segment.numFreeFifos(5000) > 0, "an 8 KiB class was carved in a batch");
  assert.equal(segment.numFreeFifos(8192), segment.numFreeFifos(5000));
  const b = segment.allocFifo(5000, "tx")!;
  assert.equal(b.offset, a.offset + 256 + 8192, "the next of the batch");
  for (const bad of [0, -1, 1.5, NaN, 2 ** 31 + 1]) assert.throws(() => segment.allocFifo(bad), RangeError);
  assert.throws(() => segment.allocFifo(100, "sideways" as "rx"), RangeError);
  assert.equal(segment.allocFifo(1 << 20), null, "no room for 1 MiB in a 1 MiB segment");
  assert.equal(segment.numFifos, 2, "failed allocations changed nothing");
});

test("freeFifo: refcounted, back on its freelist, reused at once with flags and pointers reset", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "free", size: 1 << 20 });
  const fifo = segment.allocFifo(4096, "tx")!;
  fifo.enqueue(new Uint8Array(100));
  fifo.setEvent();
  fifo.wantDequeueNotification = true;
  fifo.tag = 9;
  assert.equal(segment.retainFifo(fifo), 2);
  const free0 = segment.numFreeFifos(4096);
  segment.freeFifo(fifo); // 2 -> 1: still live
  assert.equal(segment.numFifos, 1);
  assert.equal(segment.numFreeFifos(4096), free0);
  const again = segment.fifoAt(fifo.offset);
  segment.freeFifo(again); // 1 -> 0: freed
  assert.equal(segment.numFifos, 0);
  assert.equal(segment.numFreeFifos(4096), free0 + 1);
  assert.throws(
    () => segment.freeFifo(again),
    (e: unknown) => e instanceof SegmentError && e.code === "freed",
    "a double free",
  );
  assert.throws(() => segment.fifoAt(fifo.offset), RangeError, "no longer live");
  const reused = segment.allocFifo(3000, "rx")!;
  assert.equal(reused.offset, fifo.offset, "last freed, first reused");
  assert.equal(reused.size, 3000);
  assert.equal(reused.maxDequeue, 0);
  assert.equal(reused.hasEvent, false);
  assert.equal(reused.wantDequeueNotification, false);
  assert.equal(reused.tag, 0);
  assert.equal(reused.list, "rx");
});

test("a fifo of another segment cannot be freed here", () => {
  using sm = new SegmentMain();
  const one = sm.create({ type: "private", name: "one", size: 1 << 16 });
  const two = sm.create({ type: "private", name: "two", size: 1 << 16 });
  const fifo = one.allocFifo(10)!;
  assert.throws(() => two.freeFifo(fifo), RangeError);
  assert.throws(() => two.freeFifo({} as Fifo), TypeError);
  assert.equal(one.numFifos, 1);
});

test("preallocateFifoPairs: as many pairs as fit, then only preallocated fifos are handed out", () => {
  using sm = new SegmentMain();
  const segment = sm.create({
    type: "private",
    name: "prealloc",
    size: FIFO_AREA_START + 10 * (2 * 256 + 4096 + 8192),
  });
  assert.equal(segment.preallocateFifoPairs(4096, 8000, 25), 15, "10 pairs fit, 15 could not be made");
  assert.equal(segment.numFreeFifos(4096), 10);
  assert.equal(segment.numFreeFifos(8000), 10);
  assert.equal(segment.info().preallocated, true);
  assert.match(segment.toString(), /preallocated/);
  const got: Fifo[] = [];
  for (let i = 0; i < 10; i++) got.push(segment.allocFifo(4000, "rx")!, segment.allocFifo(8000, "tx")!);
  assert.equal(got.every((f) => f !== null), true);
  assert.equal(segment.allocFifo(100), null, "nothing left, and no carving after preallocation");
  segment.freeFifo(got[0]);
  assert.equal(segment.allocFifo(100)!.offset, got[0].offset);
  assert.throws(() => segment.preallocateFifoPairs(4096, 4096, -1), RangeError);
});

test("discovery: fifos() in allocation order with tag and list; fifoAt validates its offset", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "discover", size: 1 << 20 });
  const big = segment.allocFifo(60_000, "rx")!;
  const small = segment.allocFifo(100, "tx")!;
  const mid = segment.allocFifo(9000, "rx")!;
  big.tag = 1;
  small.tag = 2;
  mid.tag = 3;
  assert.ok(small.offset > big.offset && mid.offset > small.offset);
  segment.freeFifo(small);
  const again = segment.allocFifo(50, "tx")!; // reuses small's chunk, allocated last
  again.tag = 4;
  assert.deepEqual(segment.fifos().map((f) => [f.tag, f.list, f.size]), [[1, "rx", 60_000], [3, "rx", 9000], [
    4,
    "tx",
    50,
  ]]);
  for (const bad of [-1, 1.5, 0, 4096 + 64, big.offset + 256, 1 << 30]) {
    assert.throws(() => segment.fifoAt(bad), RangeError, `offset ${bad}`);
  }
  assert.equal(segment.fifoAt(mid.offset).tag, 3);
});

test("accounting: numFifos, numFreeFifos, freeBytes, info and toString", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "acct", size: 1 << 20 });
  assert.equal(segment.freeBytes, (1 << 20) - FIFO_AREA_START);
  const fifos = Array.from({ length: 3 }, () => segment.allocFifo(4096)!);
  const batch = Math.floor(65536 / (4096 + 256));
  assert.equal(segment.numFifos, 3);
  assert.equal(segment.numFreeFifos(4096), batch - 3);
  assert.equal(segment.numFreeFifos(), batch - 3);
  assert.equal(segment.freeBytes, (1 << 20) - FIFO_AREA_START - 3 * (4096 + 256));
  for (const f of fifos) segment.freeFifo(f);
  assert.equal(segment.freeBytes, (1 << 20) - FIFO_AREA_START);
  const info = segment.info();
  assert.equal(info.activeFifos, 0);
  assert.equal(info.freeFifos, batch);
  assert.match(segment.toString(), new RegExp(`\\n  4 KiB: ${batch} free$`));
  assert.match(
    segment.toString(),
    /memory: 8 KiB used of 1 MiB \(0\.8%; .* free, .* cached\), pressure none, 0 active fifos/,
  );
});

test("mempig: 4 KiB fifos until the segment is full, free them all, allocate again: the same count", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "mempig", size: 8 << 20 });
  const grab = () => {
    const got: Fifo[] = [];
    for (let f = segment.allocFifo(4096); f; f = segment.allocFifo(4096)) got.push(f);
    return got;
  };
  const first = grab();
  assert.equal(first.length, Math.floor(((8 << 20) - FIFO_AREA_START) / (4096 + 256)));
  for (const f of first) segment.freeFifo(f);
  assert.equal(segment.numFifos, 0);
  assert.equal(segment.numFreeFifos(4096), first.length);
  assert.equal(segment.freeBytes, (8 << 20) - FIFO_AREA_START, "no byte lost");
  const second = grab();
  assert.equal(second.length, first.length);
  assert.deepEqual(new Set(second.map((f) => f.offset)), new Set(first.map((f) => f.offset)));
});

test("offset: blocks 1 and 3 (with an offset), then 2; one dequeue returns 1, 2, 3", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "offset", size: 1 << 20 });
  const fifo = segment.allocFifo(200 * KiB)!;
  const block = (k: number) => new Uint8Array(4096).fill(k);
  assert.equal(fifo.enqueue(block(1)), 4096);
  assert.equal(fifo.enqueueWithOffset(4096, block(3)), true);
  assert.equal(fifo.maxDequeue, 4096);
  assert.equal(fifo.enqueue(block(2)), 8192, "block 2 releases block 3 too");
  const out = new Uint8Array(3 * 4096);
  assert.equal(fifo.dequeue(out), out.length);
  for (let k = 0; k < 3; k++) {
    assert.ok(out.subarray(k * 4096, (k + 1) * 4096).every((b) => b === k + 1), `block ${k + 1}`);
  }
});

test(`master and slave: ${RUNTIME} master enqueues 1000 records, a ${OTHER} slave finds the fifo and checks them`, async () => {
  const name = uniqueName("master");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  segment.allocFifo(1000, "tx")!.tag = 1; // a decoy, found before the real one
  const fifo = segment.allocFifo(64 * KiB, "rx")!;
  fifo.tag = 0x5a5a;
  const record = new Uint8Array(32);
  const view = new DataView(record.buffer);
  const peer = startPeer(OTHER, "alloc_peer", ["slave", "shm", name, "1000"]);
  try {
    for (let i = 0; i < 1000; i++) {
      record.fill(0);
      const text = new TextEncoder().encode(`record ${i}`);
      view.setUint32(0, i, true);
      view.setUint32(4, text.length, true);
      record.set(text, 8);
      while (fifo.enqueue(record) === 0) if (!running(peer.pid)) throw new Error("slave died");
    }
    const result = await peer.done;
    expectSuccess(result, "slave");
    assert.deepEqual(JSON.parse(result.stdout.split("DONE ")[1]), { good: 1000, fifos: 2, list: "rx", left: 0 });
  } finally {
    peer.kill();
    await peer.done;
  }
  sm.delete(segment);
  assert.deepEqual(shmEntries(name), []);
});

test("stress: a Deno and a Bun process allocate and free mixed sizes in one segment at once", async () => {
  const name = uniqueName("stress");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 32 << 20 });
  const peers = RUNTIMES.map((rt, i) => startPeer(rt, "alloc_peer", ["churn", "shm", name, "100000", String(17 + i)]));
  try {
    const results = await Promise.all(peers.map((p) => p.done));
    results.forEach((r, i) => expectSuccess(r, `${RUNTIMES[i]} churner`));
    for (const r of results) {
      const counts = JSON.parse(r.stdout.split("DONE ")[1]);
      assert.equal(counts.corrupt, 0, "no fifo was handed out twice");
      assert.ok(counts.allocs > 5000);
      assert.equal(counts.allocs, counts.frees);
    }
    const books = audit(segment);
    assert.equal(books.live, 0);
    assert.equal(books.unformatted, 0);
    assert.equal(books.numFifos, 0);
    assert.equal(books.onFreelists, books.chunks, "every chunk is back on a freelist");
    assert.equal(segment.freeBytes, segment.size - FIFO_AREA_START, "all memory is free");
  } finally {
    for (const p of peers) p.kill();
    await Promise.all(peers.map((p) => p.done));
  }
});

test(`listing a segment while a ${OTHER} process allocates and frees every kind: fifos(), messageQueues(), messageRings() and toString() never throw`, async () => {
  // Another process frees what a listing found before the listing has made its object for it.
  const name = uniqueName("listing");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  const peer = startPeer(OTHER, "alloc_peer", ["kinds-churn", "shm", name]);
  try {
    await peer.line(/^RUNNING/);
    const found = { fifos: 0, queues: 0, rings: 0 };
    for (const end = performance.now() + 1000; performance.now() < end;) {
      const fifos = segment.fifos();
      const queues = segment.messageQueues();
      const rings = segment.messageRings();
      for (const f of fifos) assert.match(f.toString(), /^fifo @\d+/);
      for (const q of queues) assert.match(q.toString(), /^message queue @\d+/);
      for (const r of rings) assert.match(r.toString(), /^message ring @\d+/);
      assert.match(segment.toString(), new RegExp(`^\\[0\\] ${name} \\(shm\\)`));
      found.fifos += fifos.length;
      found.queues += queues.length;
      found.rings += rings.length;
    }
    // The listings did race the peer: each kind was found live some of the time.
    assert.ok(found.fifos > 0 && found.queues > 0 && found.rings > 0, JSON.stringify(found));
  } finally {
    peer.kill("SIGKILL");
    await peer.done;
  }
  sm.delete(segment);
  assert.deepEqual(shmEntries(name), []);
});

test(`kill: a ${OTHER} process SIGKILLed while allocating and freeing, 20 times; the survivors go on`, async () => {
  const name = uniqueName("kill");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 64 << 20 });
  const survivor = startPeer(RUNTIME, "alloc_peer", ["churn", "shm", name, "0", "99"]);
  try {
    await survivor.line(/^RUNNING/);
    for (let round = 0; round < 20; round++) {
      const victim = startPeer(OTHER, "alloc_peer", ["churn", "shm", name, "0", String(round + 1)]);
      await victim.line(/^RUNNING/);
      await new Promise((r) => setTimeout(r, 5 + (round * 7) % 40));
      victim.kill("SIGKILL");
      const end = await victim.done;
      assert.equal(end.signal, "SIGKILL");
      // This process allocates, checks and frees in between kills, beside the survivor.
      const mine = churn(segment, 500, 1000 + round);
      assert.equal(mine.corrupt, 0, `round ${round}`);
      assert.equal(mine.allocs, mine.frees);
    }
    survivor.kill("SIGTERM");
    await survivor.done;
    // The audit takes the allocator lock, so it first repairs what the survivor left if SIGTERM
    // caught it inside the allocator (a chunk between a freelist and live); counted after it.
    assert.deepEqual(segment.audit().lost, [], "every chunk live or on its freelist");
    const books = audit(segment);
    // What the dead held stays live until freed; no chunk is lost.
    assert.equal(books.numFifos, books.live);
    assert.ok(books.live <= 9 * 21, `at most what 21 killed processes held: ${books.live}`);
    assert.equal(books.onFreelists + books.live, books.chunks);
    const orphans = segment.orphanedFifos();
    assert.equal(orphans.length, books.live, "every live fifo's allocator is dead");
    for (const orphan of orphans) segment.freeFifo(orphan);
    const after = churn(segment, 2000, 4242);
    assert.equal(after.corrupt, 0);
    assert.ok(after.allocs > 500);
    assert.equal(audit(segment).live, 0, "allocating and freeing still balance");
    assert.equal(audit(segment).onFreelists, audit(segment).chunks);
  } finally {
    survivor.kill();
    await survivor.done;
  }
  sm.delete(segment);
  assert.deepEqual(shmEntries(name), []);
});
