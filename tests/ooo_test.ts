// Out-of-order writes: range bookkeeping after every step, collection by in-order writes, and a
// large stream with half the writes out of order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { privateFifo, seq } from "./fifo_fixture.ts";
import { SegmentError } from "../mod.ts";
import { pattern, patternByte } from "./helpers.ts";

const r = (offset: number, length: number) => ({ offset, length });

test("ranges added in sorted order, touching ranges merge", () => {
  const { sm, fifo } = privateFifo(4096);
  using _ = sm;
  assert.equal(fifo.newestOooSegment, null);
  assert.equal(fifo.enqueueWithOffset(10, seq(5, 10)), true);
  assert.deepEqual(fifo.oooSegments(), [r(10, 5)]);
  assert.deepEqual(fifo.newestOooSegment, r(10, 5));
  fifo.enqueueWithOffset(20, seq(5, 20));
  assert.deepEqual(fifo.oooSegments(), [r(10, 5), r(20, 5)]);
  assert.deepEqual(fifo.newestOooSegment, r(20, 5));
  fifo.enqueueWithOffset(25, seq(5, 25)); // touches [20,25)
  assert.deepEqual(fifo.oooSegments(), [r(10, 5), r(20, 10)]);
  assert.deepEqual(fifo.newestOooSegment, r(20, 10));
  assert.equal(fifo.maxDequeue, 0, "nothing is readable before the gap fills");
});

test("ranges added in reverse order", () => {
  const { sm, fifo } = privateFifo(4096);
  using _ = sm;
  for (const at of [40, 30, 20, 10]) fifo.enqueueWithOffset(at, seq(5, at));
  assert.deepEqual(fifo.oooSegments(), [r(10, 5), r(20, 5), r(30, 5), r(40, 5)]);
  assert.deepEqual(fifo.newestOooSegment, r(10, 5));
  fifo.enqueueWithOffset(15, seq(5, 15)); // bridges [10,15) and [20,25)
  assert.deepEqual(fifo.oooSegments(), [r(10, 15), r(30, 5), r(40, 5)]);
  assert.deepEqual(fifo.newestOooSegment, r(10, 15));
});

test("overlapping and fully covering ranges", () => {
  const { sm, fifo } = privateFifo(4096);
  using _ = sm;
  fifo.enqueueWithOffset(10, seq(10, 10));
  fifo.enqueueWithOffset(15, seq(10, 15)); // overlaps the end
  assert.deepEqual(fifo.oooSegments(), [r(10, 15)]);
  fifo.enqueueWithOffset(5, seq(7, 5)); // overlaps the start
  assert.deepEqual(fifo.oooSegments(), [r(5, 20)]);
  assert.deepEqual(fifo.newestOooSegment, r(5, 20));
  fifo.enqueueWithOffset(12, seq(3, 12)); // inside: it neither creates nor grows a range
  assert.deepEqual(fifo.oooSegments(), [r(5, 20)]);
  assert.equal(fifo.newestOooSegment, null, "as in VPP: a write that changed no range leaves no newest");
  fifo.enqueueWithOffset(40, seq(2, 40));
  fifo.enqueueWithOffset(50, seq(2, 50));
  fifo.enqueueWithOffset(0, seq(60, 0)); // covers everything
  assert.deepEqual(fifo.oooSegments(), [r(0, 60)]);
  assert.deepEqual(fifo.newestOooSegment, r(0, 60));
});

test("shuffled adds end as one range; the in-order write then releases all of it", () => {
  const { sm, fifo } = privateFifo(4096);
  using _ = sm;
  const order = [7, 3, 9, 1, 5, 8, 2, 6, 4];
  for (const k of order) fifo.enqueueWithOffset(k * 10, seq(10, k * 10));
  assert.deepEqual(fifo.oooSegments(), [r(10, 90)]);
  assert.equal(fifo.enqueue(seq(10, 0)), 100, "10 bytes written, 100 became readable");
  assert.deepEqual(fifo.oooSegments(), []);
  assert.equal(fifo.newestOooSegment, null);
  const out = new Uint8Array(100);
  assert.equal(fifo.dequeue(out), 100);
  assert.deepEqual(out, seq(100));
});

test("an in-order write covering some ranges drops them and jumps over the one it reaches", () => {
  const { sm, fifo } = privateFifo(4096);
  using _ = sm;
  fifo.enqueueWithOffset(5, seq(3, 5)); // [5,8): covered
  fifo.enqueueWithOffset(10, seq(4, 10)); // [10,14): covered
  fifo.enqueueWithOffset(18, seq(6, 18)); // [18,24): reached by the write's end (touching)
  fifo.enqueueWithOffset(40, seq(4, 40)); // [40,44): stays
  assert.equal(fifo.enqueue(seq(18, 0)), 24);
  assert.deepEqual(fifo.oooSegments(), [r(16, 4)], "relative to the new tail (24)");
  assert.equal(fifo.newestOooSegment, null, "as in VPP: an in-order enqueue clears the newest range");
  const out = new Uint8Array(24);
  fifo.dequeue(out);
  assert.deepEqual(out, seq(24));
  fifo.enqueue(seq(16, 24)); // fills the gap up to 40
  assert.equal(fifo.maxDequeue, 20);
  assert.deepEqual(fifo.oooSegments(), []);
});

test("newestOooSegment: null after an in-order enqueue even when it reaches no range; a 0-byte enqueue keeps it", () => {
  const { sm, fifo } = privateFifo(64);
  using _ = sm;
  fifo.enqueueWithOffset(30, seq(4, 30));
  assert.deepEqual(fifo.newestOooSegment, r(30, 4));
  assert.equal(fifo.enqueue(new Uint8Array(0)), 0);
  assert.deepEqual(fifo.newestOooSegment, r(30, 4), "nothing was enqueued");
  assert.equal(fifo.enqueue(seq(5)), 5);
  assert.equal(fifo.newestOooSegment, null);
  assert.deepEqual(fifo.oooSegments(), [r(25, 4)], "the range itself stays");
});

test("enqueueWithOffset is all or nothing against the free space, and wraps the ring", () => {
  const { sm, fifo } = privateFifo(32);
  using _ = sm;
  fifo.enqueue(seq(20));
  fifo.dequeue(new Uint8Array(20)); // indices at 20
  assert.equal(fifo.enqueueWithOffset(30, seq(3)), false, "past the free space");
  assert.equal(fifo.enqueueWithOffset(32, new Uint8Array(1)), false);
  assert.deepEqual(fifo.oooSegments(), []);
  assert.equal(fifo.enqueueWithOffset(8, seq(24, 8)), true, "wraps the end of the ring");
  assert.equal(fifo.enqueue(seq(8, 0)), 32);
  const out = new Uint8Array(32);
  assert.equal(fifo.dequeue(out), 32);
  assert.deepEqual(out, seq(32));
});

test("freeing a fifo forgets its ranges; a reused fifo starts clean", () => {
  const { sm, segment, fifo } = privateFifo(4096);
  using _ = sm;
  fifo.enqueueWithOffset(100, seq(10));
  segment.freeFifo(fifo);
  const again = segment.allocFifo(4096)!;
  assert.equal(again.offset, fifo.offset, "the same memory is reused");
  assert.deepEqual(again.oooSegments(), []);
  assert.equal(again.maxDequeue, 0);
  assert.throws(
    () => fifo.oooSegments(),
    (e: unknown) => e instanceof SegmentError && e.code === "freed",
    "the freed object is dead",
  );
});

const LONG = process.env.SVM_LONG === "1";
const OOO_TOTAL = LONG ? 2 * 1024 ** 3 : 512 * 1024 ** 2;

test(`${OOO_TOTAL / 1024 ** 2} MiB through a 64 KiB fifo, half the writes out of order, every byte checked`, () => {
  const total = OOO_TOTAL;
  const { sm, fifo } = privateFifo(64 * 1024);
  using _ = sm;
  const chunk = 3000; // not a divisor of the capacity: writes straddle the wrap
  const a = new Uint8Array(chunk);
  const b = new Uint8Array(chunk);
  const out = new Uint8Array(48 * 1024);
  let written = 0;
  let read = 0;
  let ooo = 0;
  while (read < total) {
    // Write chunk pairs: the second chunk first (out of order), then the first (in order).
    if (written + 2 * chunk <= total && fifo.maxEnqueue >= 2 * chunk) {
      pattern(b, written + chunk);
      assert.equal(fifo.enqueueWithOffset(chunk, b), true);
      ooo++;
      pattern(a, written);
      assert.equal(fifo.enqueue(a), 2 * chunk);
      written += 2 * chunk;
    } else if (written < total && written + 2 * chunk > total) {
      const last = pattern(new Uint8Array(total - written), written);
      written += fifo.enqueue(last);
    }
    const n = fifo.dequeue(out);
    for (let i = 0; i < n; i++) {
      if (out[i] !== patternByte(read + i)) assert.fail(`byte ${read + i}: ${out[i]} != ${patternByte(read + i)}`);
    }
    read += n;
  }
  assert.equal(read, total);
  assert.equal(written, total);
  assert.ok(ooo > total / (2 * chunk) - 2);
});
