// Every fifo method in one process: edges, wraps, partial writes, bad arguments, corruption.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentError } from "../mod.ts";
import { privateFifo, seq } from "./fifo_fixture.ts";

test("enqueue and dequeue: partial writes, exact capacity, empty and full edges", () => {
  const { sm, fifo } = privateFifo(10);
  using _ = sm;
  assert.equal(fifo.size, 10);
  assert.equal(fifo.isEmpty, true);
  assert.equal(fifo.isFull, false);
  assert.equal(fifo.maxEnqueue, 10);
  assert.equal(fifo.dequeue(new Uint8Array(4)), 0, "empty: nothing to read");
  assert.equal(fifo.enqueue(seq(6)), 6);
  assert.equal(fifo.enqueue(seq(6, 6)), 4, "only 4 fit");
  assert.equal(fifo.isFull, true);
  assert.equal(fifo.maxEnqueue, 0);
  assert.equal(fifo.enqueue(seq(1)), 0, "full: nothing written");
  assert.equal(fifo.maxDequeue, 10);
  const out = new Uint8Array(7);
  assert.equal(fifo.dequeue(out), 7);
  assert.deepEqual(out, seq(7));
  assert.equal(fifo.maxEnqueue, 7);
  const rest = new Uint8Array(20);
  assert.equal(fifo.dequeue(rest), 3);
  assert.deepEqual(rest.subarray(0, 3), seq(3, 7));
  assert.equal(fifo.isEmpty, true);
  assert.equal(fifo.enqueue(new Uint8Array(0)), 0);
  assert.equal(fifo.dequeue(new Uint8Array(0)), 0);
});

test("a 1-byte fifo and an odd-sized one work byte by byte", () => {
  for (const cap of [1, 3, 4097]) {
    const { sm, fifo } = privateFifo(cap);
    using _ = sm;
    const one = new Uint8Array(1);
    for (let i = 0; i < 3 * cap + 5; i++) {
      assert.equal(fifo.enqueue(Uint8Array.of(i & 0xff)), 1);
      assert.equal(fifo.dequeue(one), 1);
      assert.equal(one[0], i & 0xff);
    }
  }
});

test("wrap at the end of the ring: writes and reads split in two copies", () => {
  const { sm, fifo } = privateFifo(16);
  using _ = sm;
  fifo.enqueue(seq(12));
  fifo.dequeue(new Uint8Array(12)); // head and tail at index 12
  assert.equal(fifo.enqueue(seq(10, 100)), 10, "4 bytes at the end, 6 at the start");
  const peeked = new Uint8Array(10);
  assert.equal(fifo.peek(0, peeked), 10);
  assert.deepEqual(peeked, seq(10, 100));
  const out = new Uint8Array(10);
  assert.equal(fifo.dequeue(out), 10);
  assert.deepEqual(out, seq(10, 100));
});

test("wrap of the counters at their period (2^31 for a power-of-two capacity; initPointers takes any u32)", () => {
  for (const start of [0xffff_fff0, 0xffff_ffff, 0xffff_fffa, 0x7fff_fff0]) {
    const { sm, fifo } = privateFifo(64);
    using _ = sm;
    fifo.initPointers(start);
    let written = 0;
    let read = 0;
    const out = new Uint8Array(40);
    for (let round = 0; round < 20; round++) {
      written += fifo.enqueue(seq(40, written));
      assert.equal(fifo.maxDequeue, written - read);
      const n = fifo.dequeue(out);
      assert.deepEqual(out.subarray(0, n), seq(n, read));
      read += n;
    }
    assert.equal(read, 800);
    assert.equal(fifo.isEmpty, true);
  }
});

test("peek at, inside and past maxDequeue; peek does not move the head", () => {
  const { sm, fifo } = privateFifo(32);
  using _ = sm;
  fifo.enqueue(seq(20));
  const buf = new Uint8Array(8);
  assert.equal(fifo.peek(0, buf), 8);
  assert.deepEqual(buf, seq(8));
  assert.equal(fifo.peek(15, buf), 5, "only 5 bytes past offset 15");
  assert.deepEqual(buf.subarray(0, 5), seq(5, 15));
  assert.equal(fifo.peek(20, buf), 0, "at maxDequeue");
  assert.equal(fifo.peek(1000, buf), 0, "past maxDequeue");
  assert.equal(fifo.maxDequeue, 20, "peek moved nothing");
});

test("dequeueDrop and dequeueDropAll, including more than available", () => {
  const { sm, fifo } = privateFifo(32);
  using _ = sm;
  fifo.enqueue(seq(20));
  assert.equal(fifo.dequeueDrop(5), 5);
  const b = new Uint8Array(1);
  fifo.peek(0, b);
  assert.equal(b[0], 5);
  assert.equal(fifo.dequeueDrop(100), 15, "drops only what is there");
  assert.equal(fifo.dequeueDrop(1), 0);
  fifo.enqueue(seq(9));
  assert.equal(fifo.dequeueDropAll(), 9);
  assert.equal(fifo.isEmpty, true);
  assert.equal(fifo.dequeueDropAll(), 0);
});

test("zero copy: readSegments and writeSegments give in-place views, split at the wrap", () => {
  const { sm, fifo } = privateFifo(16);
  using _ = sm;
  assert.deepEqual(fifo.readSegments(), []);
  fifo.enqueue(seq(10));
  fifo.dequeueDrop(10); // both at index 10
  const free = fifo.writeSegments();
  assert.deepEqual(free.map((v) => v.length), [6, 10]);
  free[0].set(seq(6, 50));
  free[1].set(seq(4, 56), 0);
  assert.equal(fifo.enqueueNocopy(10), 10);
  const readable = fifo.readSegments();
  assert.deepEqual(readable.map((v) => v.length), [6, 4]);
  assert.deepEqual([...readable[0], ...readable[1]], [...seq(10, 50)]);
  assert.equal(fifo.dequeueDrop(10), 10);
  assert.throws(() => fifo.enqueueNocopy(17), RangeError);
  assert.equal(fifo.maxDequeue, 0, "a refused publish changes nothing");
});

test("events: setEvent is true only on 0 -> 1; unset; want-dequeue-notification", () => {
  const { sm, fifo } = privateFifo(16);
  using _ = sm;
  assert.equal(fifo.hasEvent, false);
  assert.equal(fifo.setEvent(), true);
  assert.equal(fifo.setEvent(), false);
  assert.equal(fifo.hasEvent, true);
  fifo.unsetEvent();
  assert.equal(fifo.hasEvent, false);
  assert.equal(fifo.setEvent(), true);
  assert.equal(fifo.wantDequeueNotification, false);
  fifo.wantDequeueNotification = true;
  assert.equal(fifo.clearDequeueNotification(), true);
  assert.equal(fifo.clearDequeueNotification(), false);
});

test("user fields: tag, session and thread indices, list, offset", () => {
  const { sm, segment, fifo } = privateFifo(100);
  using _ = sm;
  fifo.tag = 0xdeadbeef;
  fifo.masterSessionIndex = 1;
  fifo.masterThreadIndex = 2;
  fifo.clientSessionIndex = 3;
  fifo.clientThreadIndex = 4;
  const other = segment.fifoAt(fifo.offset);
  assert.equal(other.tag, 0xdeadbeef);
  assert.deepEqual(
    [other.masterSessionIndex, other.masterThreadIndex, other.clientSessionIndex, other.clientThreadIndex],
    [1, 2, 3, 4],
  );
  assert.equal(other.list, "rx");
  assert.equal(other.size, 100);
  assert.throws(() => (fifo.tag = -1), RangeError);
  assert.throws(() => (fifo.tag = 2 ** 32), RangeError);
  assert.equal(fifo.tag, 0xdeadbeef);
});

test("bad arguments throw and change nothing", () => {
  const { sm, segment, fifo } = privateFifo(32);
  using _ = sm;
  fifo.enqueue(seq(8));
  const bad: [() => unknown, ErrorConstructor][] = [
    [() => fifo.enqueue([1, 2] as unknown as Uint8Array), TypeError],
    [() => fifo.enqueue(new Uint16Array(2) as unknown as Uint8Array), TypeError],
    [() => fifo.dequeue("x" as unknown as Uint8Array), TypeError],
    [() => fifo.peek(-1, new Uint8Array(1)), RangeError],
    [() => fifo.peek(1.5, new Uint8Array(1)), RangeError],
    [() => fifo.enqueueWithOffset(-1, new Uint8Array(1)), RangeError],
    [() => fifo.enqueueWithOffset(NaN, new Uint8Array(1)), RangeError],
    [() => fifo.dequeueDrop(-3), RangeError],
    [() => fifo.dequeueDrop(Infinity), RangeError],
    [() => fifo.enqueueNocopy(-1), RangeError],
    [() => fifo.initPointers(5), RangeError], // not empty
    [() => fifo.initPointers(-1), RangeError],
  ];
  for (const [call, kind] of bad) assert.throws(call, kind);
  // A view of the segment's memory (this fifo's ring, or another fifo's) is refused.
  const own = fifo.readSegments()[0];
  assert.throws(() => fifo.enqueue(own), TypeError);
  assert.throws(() => fifo.dequeue(own), TypeError);
  const other = segment.allocFifo(16)!;
  other.enqueue(seq(4));
  const foreign = other.readSegments()[0];
  assert.throws(() => fifo.enqueue(foreign), TypeError);
  assert.throws(() => fifo.dequeue(other.writeSegments()[0]), TypeError);
  assert.throws(() => fifo.peek(0, foreign), TypeError);
  assert.throws(() => fifo.enqueueExact(foreign), TypeError);
  assert.equal(other.maxDequeue, 4);
  assert.equal(fifo.maxDequeue, 8, "nothing changed");
  const out = new Uint8Array(8);
  fifo.dequeue(out);
  assert.deepEqual(out, seq(8));
});

test("a peer that scribbles on the header gets a 'corrupt' error, never an out-of-bounds access", () => {
  const { sm, segment, fifo } = privateFifo(64);
  using _ = sm;
  fifo.enqueue(seq(10));
  const w = fifo.offset / 4;
  const u32 = segment.u32;
  const corrupt = (e: unknown) => e instanceof SegmentError && e.code === "corrupt";
  const saved = [...u32.subarray(w, w + 64)];
  Atomics.store(u32, w + 32, 1000); // tail far beyond head + capacity
  assert.throws(() => fifo.dequeue(new Uint8Array(4)), corrupt);
  assert.throws(() => fifo.enqueue(seq(1)), corrupt);
  u32.set(saved, w);
  u32[w + 16] = 0x7fff_fffc; // head 4 bytes below the period of a 64-byte fifo, 2^31
  u32[w + 32] = 6; // and the tail 10 bytes on, past the wrap
  assert.equal(fifo.maxDequeue, 10, "a power-of-two capacity's period is 2^31");
  u32.set(saved, w);
  const odd = segment.allocFifo(100)!; // period 100 * floor(2^31 / 100) = 2147483600
  const ow = odd.offset / 4;
  u32[ow + 32] = 2147483600; // the tail at the period is past it
  assert.throws(() => odd.enqueue(seq(1)), corrupt);
  assert.throws(() => odd.maxDequeue, corrupt);
  u32[ow + 32] = 0;
  segment.freeFifo(odd);
  u32.set(saved, w);
  u32[w + 4] = 1 << 30; // capacity beyond its size class: a new Fifo object refuses it
  assert.throws(() => segment.fifoAt(fifo.offset), corrupt);
  u32.set(saved, w);
  const out = new Uint8Array(10);
  assert.equal(fifo.dequeue(out), 10);
  assert.deepEqual(out, seq(10));
});

test("enqueueExact and dequeueExact: all or nothing", () => {
  const { sm, fifo } = privateFifo(10);
  using _ = sm;
  assert.equal(fifo.enqueueExact(seq(6)), true);
  assert.equal(fifo.enqueueExact(seq(5, 6)), false, "5 do not fit in 4");
  assert.equal(fifo.maxDequeue, 6, "nothing was written");
  assert.equal(fifo.enqueueExact(seq(4, 6)), true);
  assert.equal(fifo.isFull, true);
  const big = new Uint8Array(11);
  assert.equal(fifo.dequeueExact(big), false, "11 are not there");
  assert.equal(fifo.maxDequeue, 10, "nothing was taken");
  const out = new Uint8Array(7);
  assert.equal(fifo.dequeueExact(out), true);
  assert.deepEqual(out, seq(7));
  assert.equal(fifo.enqueueExact(seq(7, 10)), true, "wraps the ring");
  const rest = new Uint8Array(10);
  assert.equal(fifo.dequeueExact(rest), true);
  assert.deepEqual(rest, seq(10, 7));
  assert.equal(fifo.enqueueExact(new Uint8Array(0)), true);
  assert.equal(fifo.dequeueExact(new Uint8Array(0)), true);
  assert.throws(() => fifo.enqueueExact("x" as unknown as Uint8Array), TypeError);
});
