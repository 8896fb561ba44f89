// The framed message ring (issue 13): claims, commits, aborts and batched publishing; padding at
// every wrap position; corrupted record headers; and records of random lengths and types across
// two processes of different runtimes, every byte checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type MessageRing, SegmentMain, waitAny } from "../mod.ts";
import { FIFO_HEADER_SIZE, RECORD_FIRST, RG_HEAD, RG_RECORDS } from "../src/layout.ts";
import { expectSuccess, isCode, OTHER, SEED, shmEntries, startPeer, uniqueName, xorshift } from "./helpers.ts";
import { checkRecord } from "./peers/ring_records.ts";

const LONG = process.env.SVM_LONG === "1";

function ringIn(capacity = 1024) {
  const sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "ring", size: 1 << 20 });
  const ring = segment.allocMessageRing(capacity)!;
  return { sm, segment, ring };
}

function drain(ring: MessageRing): [number, number, number[]][] {
  const out: [number, number, number[]][] = [];
  ring.poll((bytes, at, length, type) => out.push([length, type, [...bytes.subarray(at, at + length)]]));
  return out;
}

test("offer, claim, commit and abort; nothing is visible before publish (or the end of the task)", async () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  assert.equal(ring.offer(new Uint8Array([1, 2, 3]), 5), true);
  const at = ring.tryClaim(2, 6);
  ring.bytes.set([8, 9], at);
  ring.commit();
  assert.ok(ring.tryClaim(4, 7) >= 0);
  ring.abort();
  assert.deepEqual(drain(ring), [], "committed but not published");
  ring.publish();
  assert.deepEqual(drain(ring), [[3, 5, [1, 2, 3]], [2, 6, [8, 9]]], "the aborted claim is never seen");
  ring.offer(new Uint8Array([4]), 1);
  await Promise.resolve(); // the end of this task's microtasks publishes
  assert.deepEqual(drain(ring), [[1, 1, [4]]]);
  assert.throws(() => ring.commit(), RangeError);
  assert.ok(ring.tryClaim(1) >= 0);
  assert.throws(() => ring.tryClaim(1), RangeError, "one claim at a time");
  ring.abort();
  assert.throws(() => ring.offer(new Uint8Array(ring.maxMessage + 1)), RangeError);
  assert.equal(ring.maxMessage, 1024 / 4 - 8);
  assert.throws(() => ring.offer(ring.bytes.subarray(0, 4)), TypeError, "a view of the segment itself");
  assert.throws(
    () => new SegmentMain().create({ type: "private", name: "x", size: 1 << 20 }).allocMessageRing(1000),
    RangeError,
  );
});

test("a record's type is an integer from 0 to 2^31 - 1: anything else is a RangeError and writes nothing", () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  // -1 is the padding record's type: a record offered with it would be skipped by the consumer.
  for (const type of [-1, -2, 2 ** 31, 2 ** 32 - 1, 1.5, NaN, Infinity]) {
    assert.throws(() => ring.offer(new Uint8Array([1]), type), RangeError, `offer, type ${type}`);
    assert.throws(() => ring.tryClaim(1, type), RangeError, `tryClaim, type ${type}`);
  }
  ring.publish();
  assert.deepEqual(drain(ring), [], "nothing was written");
  assert.equal(ring.offer(new Uint8Array([1]), 2 ** 31 - 1), true);
  const at = ring.tryClaim(1, 0);
  ring.bytes[at] = 2;
  ring.commit();
  ring.publish();
  assert.deepEqual(drain(ring), [[1, 2 ** 31 - 1, [1]], [1, 0, [2]]]);
});

test("poll's limit: below 1 (or NaN) handles nothing; a handler that throws ends the poll and gets that record again", () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  for (let i = 0; i < 3; i++) ring.offer(new Uint8Array([i]));
  ring.publish();
  for (const limit of [0, -1, NaN, -Infinity]) {
    assert.equal(ring.poll(() => assert.fail(`handled with limit ${limit}`), limit), 0);
  }
  assert.throws(() => ring.poll("no" as unknown as () => void), TypeError);
  const seen: number[] = [];
  assert.throws(() =>
    ring.poll((bytes, at) => {
      if (bytes[at] === 1) throw new Error("not now");
      seen.push(bytes[at]);
    }), /not now/);
  assert.deepEqual(seen, [0], "the record before the throw was handled");
  assert.equal(ring.poll((bytes, at) => seen.push(bytes[at]), 1.5), 2, "then the one it threw on, again, and the next");
  assert.deepEqual(seen, [0, 1, 2]);
});

test("offer copies every byte whatever the source: its offset, its length, a reused array that changed, a resizable buffer", () => {
  const { sm, ring } = ringIn(4096);
  using _ = sm;
  const backing = new Uint8Array(600);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 7 + 3) & 0xff;
  const sent: number[][] = [];
  const offer = (bytes: Uint8Array) => {
    assert.equal(ring.offer(bytes), true);
    sent.push([...bytes]);
  };
  const check = () => {
    ring.publish();
    assert.deepEqual(drain(ring).map(([, , bytes]) => bytes), sent.splice(0));
  };
  for (const offset of [0, 1, 2, 3, 4, 8, 12]) {
    for (const length of [0, 1, 3, 4, 5, 63, 64, 65, 511, 512, 513]) offer(backing.subarray(offset, offset + length));
    check();
  }
  // One array offered twice, changed in between: the second record has the new bytes.
  const reused = new Uint8Array(64).fill(1);
  offer(reused);
  reused.fill(2);
  offer(reused);
  check();
  // A length-tracking view of a resizable buffer: the bytes it has at each offer.
  const buffer = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(8, {
    maxByteLength: 256,
  });
  const growing = new Uint8Array(buffer);
  growing.fill(5);
  offer(growing);
  (buffer as unknown as { resize(n: number): void }).resize(100);
  growing.fill(6);
  offer(growing);
  check();
});

test("a full ring: offer fails after publishing what is pending, and poll frees the space in one release", () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  let sent = 0;
  while (ring.offer(new Uint8Array(56), sent)) sent++;
  assert.equal(sent, 1024 / 64 - 1, "64-byte records fill the 1 KiB area but the 8 bytes after the last");
  let seen = 0;
  assert.equal(ring.poll(() => seen++), sent, "the failed offer published the pending records");
  assert.equal(seen, sent);
  assert.equal(ring.offer(new Uint8Array(56)), true, "room again");
});

test("the consumer gives space back every quarter of the area, at the end of the task and before it waits", async () => {
  const { sm, segment, ring } = ringIn();
  using _ = sm;
  const headWord = (ring.offset + FIFO_HEADER_SIZE + RG_HEAD) >>> 2;
  while (ring.offer(new Uint8Array(56))) { /* fill */ }
  const space = ring.waitForSpace(56, { timeoutMs: 5000 });
  let seen = 0;
  assert.equal(ring.poll(() => seen++, 1), 1);
  assert.equal(segment.u32[headWord], 0, "one record read: not released yet");
  assert.equal(ring.poll(() => seen++, 3), 3);
  assert.equal(segment.u32[headWord], 4 * 64, "a quarter of the area read: released");
  while (ring.poll(() => seen++, 1) > 0) { /* one at a time */ }
  assert.equal(seen, 15);
  assert.equal(segment.u32[headWord], 12 * 64, "released at each quarter, not at the poll that found nothing");
  assert.equal(await space, true, "and the producer's wait ended");
  assert.equal(segment.u32[headWord], 15 * 64, "the end of the task released the rest");
  ring.offer(new Uint8Array(8));
  ring.publish();
  ring.poll(() => seen++, 1);
  assert.equal(segment.u32[headWord], 15 * 64, "read, not released");
  assert.equal(await ring.waitForData({ timeoutMs: 1 }), false);
  assert.equal(segment.u32[headWord], 15 * 64 + 16, "released before the wait");
});

test("within one task, a consumer that empties the ring always leaves the producer room for the longest record", () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  const rand = xorshift(SEED + 7);
  let held = 0;
  for (let i = 0; i < 20_000; i++) {
    // Random lengths, every few the longest; one record in, polled out at once: no await anywhere.
    const length = i % 5 === 0 ? ring.maxMessage : Math.floor(rand() * (ring.maxMessage + 1));
    assert.equal(ring.offer(new Uint8Array(length), i & 0xffff), true, `record ${i} of ${length} bytes found room`);
    ring.publish();
    assert.equal(ring.poll((_b, _o, got, type) => (held = got + type), 1), 1);
    assert.equal(held, length + (i & 0xffff));
  }
  // Full, then drained one at a time, then the longest again.
  while (ring.offer(new Uint8Array(8))) { /* fill */ }
  while (ring.poll(() => {}, 1) > 0) { /* drain */ }
  assert.equal(ring.offer(new Uint8Array(ring.maxMessage)), true);
});

test("a consumer handle made after a poll's task starts after what the poll read", async () => {
  const { sm, segment, ring } = ringIn();
  using _ = sm;
  for (let i = 0; i < 3; i++) ring.offer(new Uint8Array([i]), i);
  ring.publish();
  assert.equal(ring.poll(() => {}, 1), 1);
  await Promise.resolve(); // the end of the task
  const types: number[] = [];
  segment.messageRingAt(ring.offset).poll((_b, _a, _l, type) => types.push(type));
  assert.deepEqual(types, [1, 2], "the first record is not delivered again");
});

test("publish while a record is claimed: the records before it go, the claim waits for its commit, at a wrap too", () => {
  for (const lead of [0, 200, 904]) {
    const { sm, ring } = ringIn();
    using _ = sm;
    // Move the positions to `lead`; from 904 the record of 1 byte ends at 920, and the claim of 100 needs a
    // padding record before it (920 + 112 > 1024) and starts over the first record written.
    for (let moved = 0; moved < lead;) {
      const size = Math.min(256, lead - moved);
      ring.offer(new Uint8Array(size - 8), 9);
      ring.publish();
      drain(ring);
      moved += size;
    }
    ring.offer(new Uint8Array([1]), 1);
    const at = ring.tryClaim(100, 2);
    if (lead === 904) assert.equal(at, ring.offset + FIFO_HEADER_SIZE + RG_RECORDS + 8, "after the padding");
    ring.bytes.fill(7, at, at + 100);
    ring.publish();
    assert.deepEqual(drain(ring).map(([length, type]) => [length, type]), [[1, 1]], `lead ${lead}: the claim unseen`);
    ring.commit();
    ring.offer(new Uint8Array([3]), 3);
    ring.publish();
    const got = drain(ring);
    assert.deepEqual(got.map(([length, type]) => [length, type]), [[100, 2], [1, 3]], `lead ${lead}`);
    assert.deepEqual(got[0][2], new Array(100).fill(7));
  }
});

test("a second handle produces after the records the first one published", () => {
  const { sm, segment, ring } = ringIn();
  using _ = sm;
  ring.offer(new Uint8Array([1]), 1);
  ring.offer(new Uint8Array([2, 2]), 2);
  ring.publish();
  const other = segment.messageRingAt(ring.offset);
  other.offer(new Uint8Array([3, 3, 3]), 3);
  other.publish();
  assert.deepEqual(drain(ring).map(([length, type]) => [length, type]), [[1, 1], [2, 2], [3, 3]]);
  // A scribbled record on the way: the new producer refuses to start rather than write over it.
  ring.offer(new Uint8Array(4), 4);
  ring.publish();
  const records = ring.offset + FIFO_HEADER_SIZE + RG_RECORDS;
  segment.u32[(records + 48) >>> 2] = 4000;
  assert.throws(() => segment.messageRingAt(ring.offset).offer(new Uint8Array(1)), isCode("corrupt"));
});

test("padding at every wrap position: each record is one contiguous range, read back whole", () => {
  for (let lead = 0; lead < 1024; lead += 8) {
    const { sm, ring } = ringIn();
    using _ = sm;
    // Move the positions so that the next record starts `lead` bytes before the end of the area.
    const start = (1024 - lead) % 1024;
    for (let moved = 0; moved < start;) {
      const size = Math.min(248, start - moved) - 8;
      assert.equal(ring.offer(new Uint8Array(size)), true);
      ring.publish();
      drain(ring);
      moved += size + 8;
    }
    const big = new Uint8Array(200).map((_, i) => (i * 7 + lead) & 0xff);
    assert.equal(ring.offer(big, 42), true, `lead ${lead}`);
    ring.publish();
    const got = drain(ring);
    assert.equal(got.length, 1);
    assert.deepEqual(got[0][2], [...big], `lead ${lead}`);
  }
});

/** A ring with two one-byte records published, of types 1 and 2; `records` is where its area starts. */
function twoRecords() {
  const { sm, segment, ring } = ringIn();
  ring.offer(new Uint8Array([1]), 1);
  ring.offer(new Uint8Array([2]), 2);
  ring.publish();
  return { sm, segment, ring, records: ring.offset + FIFO_HEADER_SIZE + RG_RECORDS };
}

test("a corrupted record header is a typed error and releases nothing after it", () => {
  const { sm, segment, ring, records } = twoRecords();
  using _ = sm;
  segment.u32[(records + 16) >>> 2] = 5000; // the second record's length
  const seen: number[] = [];
  assert.throws(() => ring.poll((_b, _a, _l, type) => seen.push(type)), isCode("corrupt"));
  assert.deepEqual(seen, [1], "the record before it was handled");
  assert.throws(() => ring.poll(() => {}), isCode("corrupt"), "and it stays refused");
  // A record that would run past the end of the area, marked as a batch's first: refused too.
  segment.u32[(records + 16) >>> 2] = (RECORD_FIRST | 1020) >>> 0;
  segment.i32[(records + 20) >>> 2] = -1;
  assert.throws(() => ring.poll(() => {}), isCode("corrupt"));
  segment.u32[(records + 16) >>> 2] = 0;
  assert.equal(ring.poll(() => {}), 0, "a zero size word: nothing published");
});

test("a scribbled negative type other than the padding's is corrupt, not a record", () => {
  const { sm, segment, ring, records } = twoRecords();
  using _ = sm;
  segment.i32[(records + 20) >>> 2] = -7; // the second record's type: no producer writes it
  const seen: number[] = [];
  assert.throws(() => ring.poll((_b, _a, _l, type) => seen.push(type)), isCode("corrupt"));
  assert.deepEqual(seen, [1], "the record before it was handled, the scribbled one not");
  assert.throws(() => ring.tryReceive(new Uint8Array(8)), isCode("corrupt"), "and it stays refused");
  segment.i32[(records + 20) >>> 2] = 2;
  assert.deepEqual(drain(ring).map((r) => r[1]), [2], "mended, it reads as the record it was");
});

test("poll or tryReceive from inside a poll's handler is a TypeError; no record is handled twice", () => {
  const { sm, ring } = ringIn();
  using _ = sm;
  for (let i = 0; i < 10; i++) ring.offer(new Uint8Array([i]), i);
  ring.publish();
  const seen: number[] = [];
  const inner: unknown[] = [];
  assert.equal(
    ring.poll((_b, _a, _l, type) => {
      seen.push(type);
      if (type !== 0) return;
      for (const nested of [() => ring.poll(() => seen.push(-1)), () => ring.tryReceive(new Uint8Array(8))]) {
        try {
          nested();
        } catch (error) {
          inner.push(error);
        }
      }
    }),
    10,
  );
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(inner.length, 2);
  for (const error of inner) assert.ok(error instanceof TypeError, String(error));
  assert.equal(ring.poll(() => seen.push(-2)), 0, "every record was consumed once");
  ring.offer(new Uint8Array([10]), 10);
  ring.publish();
  assert.deepEqual(drain(ring).map((r) => r[1]), [10], "and the ring goes on");
});

test("a handler that frees its ring or deletes the segment ends the poll; nothing is read or written after it", () => {
  const { sm, segment, ring } = ringIn();
  using _ = sm;
  for (let i = 0; i < 10; i++) ring.offer(new Uint8Array([i]), i);
  ring.publish();
  const seen: number[] = [];
  let fifo: ReturnType<typeof segment.allocFifo> = null;
  const pattern = Uint8Array.from({ length: 1500 }, (_, i) => (i * 13 + 5) & 0xff);
  const handled = ring.poll((_b, _a, _l, type) => {
    seen.push(type);
    if (type !== 2) return;
    segment.freeMessageRing(ring);
    // The chunk it had, taken at once by a fifo whose bytes cover where the ring's records and
    // head were.
    fifo = segment.allocFifo(ring.capacity + 500)!;
    fifo.enqueue(pattern);
  });
  assert.equal(handled, 3);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(fifo!.offset, ring.offset, "the fifo took the ring's chunk (else this test shows nothing)");
  const back = new Uint8Array(1500);
  assert.equal(fifo!.dequeue(back), 1500);
  assert.deepEqual(back, pattern, "the poll wrote nothing into the fifo that took the chunk");
  assert.throws(() => ring.poll(() => {}), isCode("freed"));

  // A segment of shm, whose deletion unmaps it: the poll must not read on.
  using shm = new SegmentMain();
  const named = shm.create({ type: "shm", name: uniqueName("ring-delete"), size: 1 << 20 });
  const other = named.allocMessageRing(1024)!;
  for (let i = 0; i < 10; i++) other.offer(new Uint8Array([i]), i);
  other.publish();
  const got: number[] = [];
  assert.equal(other.poll((_b, _a, _l, type) => got.push(type) === 3 && shm.delete(named)), 3);
  assert.deepEqual(got, [0, 1, 2]);
  assert.throws(() => other.poll(() => {}), isCode("deleted"));
});

test("an area scribbled full of records: a poll reads one lap of them at most, and returns", () => {
  const { sm, segment, ring } = ringIn();
  using _ = sm;
  const records = ring.offset + FIFO_HEADER_SIZE + RG_RECORDS;
  for (let at = 0; at < 1024; at += 64) {
    segment.u32[(records + at) >>> 2] = 64;
    segment.i32[(records + at + 4) >>> 2] = 7;
  }
  assert.equal(ring.poll(() => {}), 16);
  assert.equal(ring.poll(() => {}), 16, "the next lap, also bounded");
});

test("waits: waitForData sleeps until a publish; waitAny takes rings; close ends the stream", async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name: uniqueName("ringwait"), size: 1 << 20 });
  const ring = segment.allocMessageRing(4096)!;
  const other = segment.allocMessageRing(4096)!;
  setTimeout(() => ring.offer(new Uint8Array([7])), 20);
  assert.equal(await ring.waitForData({ timeoutMs: 5000 }), true);
  assert.equal(ring.tryReceive(new Uint8Array(4)), 1);
  assert.equal(await ring.waitForData({ timeoutMs: 30 }), false);
  setTimeout(() => other.offer(new Uint8Array([8])), 20);
  assert.deepEqual(await waitAny([ring, other], { timeoutMs: 5000 }), [other]);
  other.close();
  assert.equal(await other.waitForData(), true);
  assert.equal(other.isClosed, true);
  assert.match(segment.toString(), /message ring @\d+: \d+ of 4096 bytes used/);
  assert.equal(segment.info().messageRings, 2);
  segment.freeMessageRing(other);
  assert.throws(() => other.offer(new Uint8Array(1)), isCode("freed"));
  assert.equal(segment.messageRings().length, 1);
});

const COUNT = LONG ? 10_000_000 : 1_000_000;

for (const [producer, consumer] of [[OTHER, "here"], ["here", OTHER]] as const) {
  test(`${COUNT} records of random lengths and types, ${producer === "here" ? "this process" : OTHER} producing, every byte checked`, async () => {
    const name = uniqueName("ring");
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name, size: 4 << 20 });
    const ring = segment.allocMessageRing(1 << 20)!;
    const args = [name, String(ring.offset), String(COUNT)];
    if (producer === "here") {
      const reader = startPeer(consumer as typeof OTHER, "ring_peer", ["consume", ...args], 600_000);
      const { produce } = await import("./peers/ring_sides.ts");
      await produce(ring, COUNT, 17);
      const result = await reader.done;
      expectSuccess(result, "consumer");
      const { got, bad } = JSON.parse(result.stdout.split("DONE ")[1]);
      assert.equal(bad, 0);
      assert.equal(got, COUNT);
    } else {
      const writer = startPeer(producer, "ring_peer", ["produce", ...args, "17"], 600_000);
      const { consume } = await import("./peers/ring_sides.ts");
      const { got, bad, batches } = await consume(ring);
      expectSuccess(await writer.done, "producer");
      assert.equal(bad, 0, "every record as written");
      assert.equal(got, COUNT, "every record arrived, none of the aborted claims");
      assert.ok(batches < COUNT, `polled in batches (${batches} polls)`);
    }
    sm.delete(segment);
    assert.deepEqual(shmEntries(name), []);
  });
}

test(`a ${OTHER} producer killed mid-stream: every record it published arrives whole and in order, then peer-gone within a second`, async () => {
  const name = uniqueName("ringkill");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  const ring = segment.allocMessageRing(1 << 16)!;
  const writer = startPeer(OTHER, "ring_peer", ["produce", name, String(ring.offset), String(1e9), "5"]);
  try {
    let got = 0;
    let bad = 0;
    const check = (bytes: Uint8Array, at: number, length: number, type: number) => {
      if (!checkRecord(bytes, at, length, type, got, ring.maxMessage)) bad++;
      got++;
    };
    while (got < 20_000) {
      if (ring.poll(check) === 0) await ring.waitForData({ timeoutMs: 20_000 });
    }
    writer.kill("SIGKILL");
    await writer.done;
    const killed = performance.now();
    let error: unknown;
    for (;;) {
      if (ring.poll(check) > 0) continue;
      try {
        await ring.waitForData({ timeoutMs: 5000 });
      } catch (e) {
        error = e;
        break;
      }
    }
    const took = performance.now() - killed;
    assert.ok(isCode("peer-gone")(error), `ended with ${error}`);
    assert.ok(took < 1000, `peer-gone after ${took.toFixed(0)} ms`);
    assert.equal(bad, 0, `every one of ${got} records as written`);
  } finally {
    writer.kill("SIGKILL");
    sm.delete(segment);
  }
  assert.deepEqual(shmEntries(name), []);
});

test(`a ${OTHER} consumer killed: the producer's wait for space ends with peer-gone within a second`, async () => {
  const name = uniqueName("ringkill");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  const ring = segment.allocMessageRing(1 << 16)!;
  const reader = startPeer(OTHER, "ring_peer", ["consume", name, String(ring.offset)]);
  try {
    const record = new Uint8Array(100);
    for (let sent = 0; sent < 20_000;) {
      if (ring.offer(record)) sent++;
      else await ring.waitForSpace(record.length, { timeoutMs: 20_000 });
    }
    reader.kill("SIGKILL");
    await reader.done;
    const killed = performance.now();
    while (ring.offer(record)) { /* fill what the dead reader left */ }
    await assert.rejects(ring.waitForSpace(record.length, { timeoutMs: 5000 }), isCode("peer-gone"));
    const took = performance.now() - killed;
    assert.ok(took < 1000, `peer-gone after ${took.toFixed(0)} ms`);
  } finally {
    reader.kill("SIGKILL");
    sm.delete(segment);
  }
  assert.deepEqual(shmEntries(name), []);
});
