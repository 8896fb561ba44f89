// Dequeue notifications as VPP has them: the producer asks (always with a free-space threshold,
// if the fifo was full, if it became empty); the reader asks after each dequeue whether one is
// due. And the library's own waits use the same test: a writer asleep for n bytes is rung only
// once n bytes are free.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentMain } from "../mod.ts";
import { FF_SPACE_WAITER } from "../src/layout.ts";
import { privateFifo } from "./fifo_fixture.ts";
import { shmEntries, uniqueName } from "./helpers.ts";

const take = (fifo: { dequeue(dst: Uint8Array): number }, n: number) => fifo.dequeue(new Uint8Array(n));

test("always: due after a dequeue that leaves the threshold free, until cleared", () => {
  const { sm, fifo } = privateFifo(100);
  using _ = sm;
  fifo.enqueue(new Uint8Array(100));
  assert.equal(fifo.needsDequeueNotification(0), false, "nothing asked for");
  fifo.addDequeueNotification("always");
  fifo.dequeueThreshold = 30;
  assert.deepEqual(fifo.dequeueNotifications, ["always"]);
  assert.equal(take(fifo, 20), 20);
  assert.equal(fifo.needsDequeueNotification(20), false, "20 free of a threshold of 30");
  assert.equal(take(fifo, 10), 10);
  assert.equal(fifo.needsDequeueNotification(10), true, "30 free");
  assert.equal(fifo.clearDequeueNotification(), true);
  assert.equal(take(fifo, 10), 10);
  assert.equal(fifo.needsDequeueNotification(10), false, "cleared: said once");
  assert.deepEqual(fifo.dequeueNotifications, []);
  fifo.wantDequeueNotification = true; // the single flag of the older API: "always"
  fifo.dequeueThreshold = 0;
  assert.equal(fifo.needsDequeueNotification(0), true);
  fifo.wantDequeueNotification = false;
  assert.equal(fifo.needsDequeueNotification(0), false);
});

test("if-full: due when a dequeue ends a full fifo, once until the producer resets it", () => {
  const { sm, fifo } = privateFifo(64);
  using _ = sm;
  fifo.addDequeueNotification("if-full");
  fifo.enqueue(new Uint8Array(40));
  take(fifo, 10);
  assert.equal(fifo.needsDequeueNotification(10), false, "the fifo was not full");
  fifo.enqueue(new Uint8Array(34)); // full: 64
  take(fifo, 8);
  assert.equal(fifo.needsDequeueNotification(8), true, "56 + 8 = the capacity: it was full");
  assert.equal(fifo.clearDequeueNotification(), true);
  fifo.enqueue(new Uint8Array(8));
  take(fifo, 8);
  assert.equal(fifo.needsDequeueNotification(8), false, "said already");
  fifo.resetDequeueNotification();
  fifo.enqueue(new Uint8Array(8));
  take(fifo, 1);
  assert.equal(fifo.needsDequeueNotification(1), true, "reset: said again");
});

test("if-empty: due when a dequeue empties the fifo; several kinds together", () => {
  const { sm, fifo } = privateFifo(64);
  using _ = sm;
  fifo.addDequeueNotification("if-empty");
  fifo.addDequeueNotification("if-full");
  assert.deepEqual(fifo.dequeueNotifications, ["if-full", "if-empty"]);
  fifo.enqueue(new Uint8Array(20));
  take(fifo, 10);
  assert.equal(fifo.needsDequeueNotification(10), false);
  take(fifo, 10);
  assert.equal(fifo.needsDequeueNotification(10), true, "empty");
  fifo.clearDequeueNotification();
  fifo.enqueue(new Uint8Array(5));
  take(fifo, 5);
  assert.equal(fifo.needsDequeueNotification(5), false, "said once");
  fifo.removeDequeueNotification("if-empty");
  fifo.resetDequeueNotification();
  fifo.enqueue(new Uint8Array(5));
  take(fifo, 5);
  assert.equal(fifo.needsDequeueNotification(5), false, "withdrawn");
});

test("dequeue notifications: bad arguments are typed errors and change nothing", () => {
  const { sm, fifo } = privateFifo(64);
  using _ = sm;
  assert.throws(() => fifo.addDequeueNotification("sometimes" as never), TypeError);
  assert.throws(() => fifo.addDequeueNotification("toString" as never), TypeError);
  assert.throws(() => (fifo.dequeueThreshold = 65), RangeError);
  assert.throws(() => (fifo.dequeueThreshold = -1), RangeError);
  assert.throws(() => fifo.needsDequeueNotification(1.5), RangeError);
  assert.deepEqual(fifo.dequeueNotifications, []);
  assert.equal(fifo.dequeueThreshold, 0);
});

test("a reused fifo starts with no dequeue notification asked for", () => {
  const { sm, segment, fifo } = privateFifo(4096);
  using _ = sm;
  fifo.addDequeueNotification("if-full");
  fifo.dequeueThreshold = 100;
  segment.freeFifo(fifo);
  const again = segment.allocFifo(4096)!;
  assert.equal(again.offset, fifo.offset);
  assert.deepEqual(again.dequeueNotifications, []);
  assert.equal(again.dequeueThreshold, 0);
});

test("a writer asleep in waitForSpace(n) is rung only once n bytes are free", async () => {
  const name = uniqueName("deqntf");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  try {
    const fifo = segment.allocFifo(4096)!;
    const reader = new SegmentMain();
    using _r = reader;
    const other = reader.attach({ type: "shm", name }).fifoAt(fifo.offset);
    fifo.enqueue(new Uint8Array(4096));
    const waiter = (fifo.offset + FF_SPACE_WAITER) >>> 2;
    const u32 = new Uint32Array(segment.u8.buffer, segment.u8.byteOffset, segment.u8.byteLength >>> 2);
    let woke = false;
    const wait = fifo.waitForSpace(1000, { timeoutMs: 10_000 }).then((ok) => (woke = ok));
    for (let i = 0; i < 50 && Atomics.load(u32, waiter) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.notEqual(Atomics.load(u32, waiter), 0, "the writer is asleep");
    for (let i = 0; i < 9; i++) {
      assert.equal(take(other, 100), 100);
      assert.notEqual(Atomics.load(u32, waiter), 0, `${(i + 1) * 100} bytes free: not rung`);
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(woke, false);
    assert.equal(take(other, 100), 100);
    assert.equal(Atomics.load(u32, waiter), 0, "1000 bytes free: rung");
    assert.equal(await wait, true);
  } finally {
    sm.delete(segment);
  }
  assert.deepEqual(shmEntries(name), []);
});
