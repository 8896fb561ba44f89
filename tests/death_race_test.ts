// A peer that finishes its work and then dies: what it published just before it died is never
// lost. The race is made deterministic with a liveness whose answer "dead" comes with the
// peer's last write, exactly as when the peer publishes and exits between a reader's look at
// the data and its look at the peer's life.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Fifo } from "../src/fifo/fifo.ts";
import { MessageQueue } from "../src/queue/message_queue.ts";
import type { Liveness } from "../src/segment/process_table.ts";
import type { Segment } from "../src/segment/segment.ts";
import {
  FF_PRODUCER,
  FIFO_HEADER_SIZE,
  MQ_RINGS,
  MQR_BASE,
  MQR_TAIL,
  MQS_CLAIM_POS,
  MQS_LENGTH,
  MQS_PAYLOAD,
  MQS_STATE,
  MQS_WRITER,
} from "../src/layout.ts";
import { SegmentMain } from "../mod.ts";
import { shmEntries, uniqueName } from "./helpers.ts";

/** A process tag nobody holds: slot 200, generation 5. */
const GONE = (5 << 8) | 200;

/** The segment as the library sees it, but with `isAlive(GONE)` running `lastWords` and answering "dead". */
function withDyingPeer(segment: Segment, lastWords: () => void): Segment {
  const real = segment.liveness;
  let said = false;
  const liveness: Liveness = {
    ownTag: real.ownTag,
    isAlive(tag) {
      if (tag !== GONE) return real.isAlive(tag);
      if (!said) {
        said = true;
        lastWords(); // the peer's last write, then its exit
      }
      return false;
    },
    pause: () => real.pause(),
    pidOf: (tag) => real.pidOf(tag),
  };
  return new Proxy(segment, {
    get(target, prop) {
      if (prop === "liveness") return liveness;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function chunkEnd(segment: Segment, offset: number): number {
  const chunk = segment.chunks().find((c) => c.offset === offset)!;
  return chunk.offset + chunk.length;
}

test("message queue: a producer that publishes its claimed slot and then dies has its message delivered, not dropped", async () => {
  const name = uniqueName("race-mq");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  try {
    const real = segment.allocMessageQueue({ slots: 4, slotSize: 16 })!;
    const u32 = new Uint32Array(segment.u8.buffer, segment.u8.byteOffset, segment.u8.byteLength >>> 2);
    const d = real.offset + FIFO_HEADER_SIZE;
    const slot = (d + Atomics.load(u32, (d + MQ_RINGS + MQR_BASE) >>> 2)) >>> 2; // position 0's slot
    // The dying producer claimed position 0 (writer word, claim, tail) and is still writing.
    Atomics.store(u32, slot + MQS_WRITER / 4, GONE);
    Atomics.store(u32, slot + MQS_CLAIM_POS / 4, 1);
    Atomics.store(u32, (d + MQ_RINGS + MQR_TAIL) >>> 2, 1);
    const consumer = new MessageQueue(
      withDyingPeer(segment, () => {
        // ...it finishes: the message, then "ready at 0"; then it exits.
        Atomics.store(u32, slot + MQS_LENGTH / 4, 3);
        segment.u8.set([7, 8, 9], slot * 4 + MQS_PAYLOAD);
        Atomics.store(u32, slot + MQS_STATE / 4, 0 * 4 + 1);
      }),
      real.offset,
      chunkEnd(segment, real.offset),
    );
    const dst = new Uint8Array(16);
    assert.equal(consumer.tryReceive(dst), -1, "claimed, not yet published: nothing to read");
    await new Promise((r) => setTimeout(r, 60)); // stuck long enough for the consumer to ask after the writer
    let got = consumer.tryReceive(dst);
    if (got < 0) got = consumer.tryReceive(dst);
    assert.equal(got, 3, "the message published before the death is delivered");
    assert.deepEqual([...dst.subarray(0, 3)], [7, 8, 9]);
    assert.equal(consumer.tryReceive(dst), -1);
  } finally {
    sm.delete(segment);
  }
  assert.deepEqual(shmEntries(name), []);
});

test("fifo: a producer that writes its last bytes and then dies: a Sync wait returns the data, not peer-gone", () => {
  const name = uniqueName("race-fifo");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  try {
    const writer = segment.allocFifo(4096)!;
    const producerWord = (writer.offset + FF_PRODUCER) >>> 2;
    const u32 = new Uint32Array(segment.u8.buffer, segment.u8.byteOffset, segment.u8.byteLength >>> 2);
    const reader = new Fifo(
      withDyingPeer(segment, () => {
        writer.enqueue(new Uint8Array([1, 2, 3])); // its last bytes...
        Atomics.store(u32, producerWord, GONE); // ...written as the dying process
      }),
      writer.offset,
      chunkEnd(segment, writer.offset),
    );
    Atomics.store(u32, producerWord, GONE); // the producer is the dying process
    assert.equal(reader.waitForDataSync({ timeoutMs: 2000 }), true, "the data came before the death");
    const buf = new Uint8Array(8);
    assert.equal(reader.dequeue(buf), 3);
    assert.throws(() => reader.waitForDataSync({ timeoutMs: 2000 }), { code: "peer-gone" }, "drained: now peer-gone");
  } finally {
    sm.delete(segment);
  }
  assert.deepEqual(shmEntries(name), []);
});
