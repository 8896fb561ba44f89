// Fifos across processes and runtimes: patterned data each way with varied write and read sizes,
// every byte checked (256 MiB over shm in `npm test`, 1 GiB with SVM_LONG=1); and the event
// protocol in a long run with no lost wake-up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentMain } from "../mod.ts";
import { expectSuccess, OTHER, running, RUNTIME, shmEntries, startPeer, STREAM_MAX_IO, uniqueName } from "./helpers.ts";
import { consumeStream, produceEvents, produceStream } from "./peers/stream.ts";
import { streamWithPeer } from "./stream_pair.ts";

const GiB = 1024 ** 3;
const LONG = process.env.SVM_LONG === "1";

// The runtimes at the other end: Node streams with both Deno and Bun; Deno and Bun with each other.
const PEERS = RUNTIME === "node" ? ["deno", "bun"] as const : [OTHER];

for (const other of PEERS) {
  for (const type of ["shm", "memfd"] as const) {
    for (const direction of ["produce", "consume"] as const) {
      const producer = direction === "produce" ? RUNTIME : other;
      const consumer = direction === "produce" ? other : RUNTIME;
      const total = (type === "shm" ? GiB : GiB / 4) / (LONG ? 1 : 4); // shm each way; a shorter memfd run
      test(`${type}: ${producer} producer -> ${consumer} consumer, ${total / 2 ** 20} MiB, every byte checked`, async () => {
        const name = uniqueName(`stream-${type}`);
        using sm = new SegmentMain();
        const segment = sm.create({ type, name, size: 4 << 20 });
        const fifo = segment.allocFifo(1_000_000, "rx")!; // not a power of two
        const where = type === "shm" ? name : `${process.pid}:${segment.info().fd}`;
        const seed = 1234;
        const iProduce = direction === "produce";
        const args = [iProduce ? "consume" : "produce", type, where, String(fifo.offset), String(total), String(seed)];
        const { produced, consumed } = await streamWithPeer(
          other,
          args,
          iProduce,
          (table, alive) =>
            iProduce ? produceStream(fifo, total, seed, table, alive) : consumeStream(fifo, total, seed, table, alive),
        );
        assert.equal(produced.bytes, total);
        assert.deepEqual(
          { bytes: consumed.bytes, bad: consumed.bad, firstBad: consumed.firstBad, left: consumed.left },
          { bytes: total, bad: 0, firstBad: -1, left: 0 },
        );
        const many = total / STREAM_MAX_IO; // writes and reads average half the largest
        assert.ok(produced.writes > many && consumed.reads > many, "many writes and reads of varied sizes");
        sm.delete(segment);
        assert.deepEqual(shmEntries(name), []);
      });
    }
  }
}

for (const order of ["events", "events-wrong-order"] as const) {
  const right = order === "events";
  test(
    right
      ? `events: ${RUNTIME} producer, ${OTHER} consumer, bursts and idle gaps, no lost wake-up`
      : `events control: the consumer that checks before clearing the flag does lose a wake-up`,
    async () => {
      const name = uniqueName("events");
      using sm = new SegmentMain();
      const segment = sm.create({ type: "shm", name, size: 1 << 20 });
      const data = segment.allocFifo(4096, "rx")!; // small: the producer often finds it full
      const events = segment.allocFifo(4096, "tx")!;
      events.tag = 0xe7e7;
      const messages = right ? 200_000 : 50_000;
      const args = [order, "shm", name, String(data.offset), String(messages), "0"];
      const peer = startPeer(OTHER, "fifo_peer", args, 300_000);
      try {
        const alive = () => running(peer.pid);
        const sleep = (us: number) => sm.os.sleepMicroseconds(us);
        let mine = { sent: 0, notifications: 0 };
        try {
          mine = produceEvents(data, events, messages, sleep, alive);
        } catch (error) {
          if (right) throw error; // the control's consumer leaves at its first loss
        }
        const result = await peer.done;
        expectSuccess(result, `${OTHER} event consumer`);
        const theirs = JSON.parse(result.stdout.split("DONE ")[1]);
        if (!right) {
          assert.ok(theirs.lost > 0, "the wrong order must lose a wake-up, or this test could not see one");
          return;
        }
        assert.equal(mine.sent, messages);
        assert.equal(theirs.received, messages, "every message arrived");
        assert.equal(theirs.bad, 0, "in order and intact");
        assert.equal(theirs.lost, 0, "no wake-up was lost");
        assert.ok(theirs.wakeups > 100, `the consumer slept and was woken many times (${theirs.wakeups})`);
        assert.ok(mine.notifications >= theirs.wakeups - 1, "every wake-up was notified");
        assert.ok(mine.notifications < messages, "notifications were coalesced by the event flag");
      } finally {
        peer.kill();
        await peer.done;
      }
    },
  );
}
