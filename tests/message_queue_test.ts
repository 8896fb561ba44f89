// Message queues (issue 10): many producers in processes of both runtimes, one consumer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type MessageQueue, SegmentError, SegmentMain } from "../mod.ts";
import {
  FIFO_HEADER_SIZE,
  messageQueueHeaderBytes,
  messageSlotStride,
  MQ_RINGS,
  MQ_SPACE_SEQ,
  MQ_SPACE_SLEEPER_WORDS,
  MQ_SPACE_SLEEPERS,
  MQ_SPACE_WAITER,
  MQR_TAIL,
  MQS_WRITER,
  ringPeriod,
} from "../src/layout.ts";
import {
  expectSuccess,
  isCode,
  OTHER,
  type Peer,
  RUNTIME,
  SEED,
  shmEntries,
  startPeer,
  uniqueName,
  xorshift,
} from "./helpers.ts";
import { checkMessage, messageOf } from "./mq_message.ts";

const LONG = process.env.SVM_LONG === "1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function privateQueue(spec: Parameters<import("../mod.ts").Segment["allocMessageQueue"]>[0]) {
  const sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "mq", size: 4 << 20 });
  return { sm, segment, queue: segment.allocMessageQueue(spec)! };
}

test("message queue: full and empty edges, lengths, a dst too short, a message too long", () => {
  const { sm, queue } = privateQueue({ slots: 3, slotSize: 10 });
  using _ = sm;
  const dst = new Uint8Array(10);
  assert.equal(queue.tryReceive(dst), -1, "empty");
  assert.equal(queue.capacity, 3);
  assert.equal(queue.slotSize, 10);
  for (let i = 0; i < 3; i++) assert.equal(queue.trySend(Uint8Array.of(i, i, i)), true);
  assert.equal(queue.trySend(new Uint8Array(1)), false, "full");
  assert.equal(queue.size, 3);
  assert.throws(() => queue.trySend(new Uint8Array(11)), RangeError);
  assert.throws(() => queue.tryReceive(new Uint8Array(2)), RangeError, "dst too short");
  assert.equal(queue.size, 3, "the message stayed");
  assert.equal(queue.tryReceive(dst), 3);
  assert.deepEqual([...dst.subarray(0, 3)], [0, 0, 0]);
  assert.equal(queue.trySend(new Uint8Array(0)), true, "an empty message");
  assert.equal(queue.tryReceive(dst), 3);
  assert.equal(queue.tryReceive(dst), 3);
  assert.equal(queue.tryReceive(dst), 0);
  assert.equal(queue.tryReceive(dst), -1);
});

test("message queue: several rings; the smallest that fits and has room; per-sender order across rings", () => {
  const { sm, segment, queue } = privateQueue({ rings: [{ slots: 2, slotSize: 16 }, { slots: 4, slotSize: 64 }] });
  using _ = sm;
  assert.deepEqual(queue.rings, [{ slots: 2, slotSize: 16 }, { slots: 4, slotSize: 64 }]);
  // Small messages fill ring 0, then spill into ring 1; a 17-byte one goes to ring 1 only.
  const small = (seq: number) => Uint8Array.of(seq, 0, 0, 0, 0, 0, 0, 0);
  for (let seq = 1; seq <= 6; seq++) assert.equal(queue.trySend(small(seq)), true, `message ${seq}`);
  assert.equal(queue.trySend(new Uint8Array(8)), false, "both rings full");
  const got: number[] = [];
  queue.receiveBatch((bytes) => got.push(bytes[0]), 3);
  assert.equal(queue.trySend(new Uint8Array(17)), true, "a 17-byte message finds room in ring 1");
  queue.receiveBatch((bytes, length) => length === 8 && got.push(bytes[0]));
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6], "in the order sent, whichever ring each went to");
  // Two senders, messages of random lengths over both rings, drained a few at a time.
  const a = segment.messageQueueAt(queue.offset);
  const b = segment.messageQueueAt(queue.offset);
  const buf = new Uint8Array(64);
  const last = new Map<number, number>();
  const take = (bytes: Uint8Array, length: number) => {
    const { id, seq } = checkMessage(bytes, length);
    assert.equal(seq, (last.get(id) ?? 0) + 1, `sender ${id} in order`);
    last.set(id, seq);
  };
  const sent = new Map([[7, 0], [8, 0]]);
  const rand = xorshift(SEED + 3);
  while (sent.get(7)! < 300 || sent.get(8)! < 300) {
    for (const [id, handle] of [[7, a], [8, b]] as const) {
      const seq = sent.get(id)! + 1;
      if (seq <= 300 && handle.trySend(messageOf(buf, id, seq))) sent.set(id, seq);
    }
    queue.receiveBatch(take, 1 + Math.floor(rand() * 3));
  }
  queue.receiveBatch(take);
  assert.equal(last.get(7), 300);
  assert.equal(last.get(8), 300);
  assert.equal(queue.size, 0);
});

test("message queue: wrap of positions and sender sequences", () => {
  for (const rings of [[{ slots: 3, slotSize: 8 }], [{ slots: 2, slotSize: 8 }, { slots: 5, slotSize: 64 }]]) {
    const { sm, queue } = privateQueue({ rings });
    using _ = sm;
    const period = ringPeriod(rings[0].slots);
    queue.initPositions(period - 2, 0xffff_fffd);
    const buf = new Uint8Array(64);
    const dst = new Uint8Array(64);
    let next = 1;
    for (let seq = 1; seq <= 40; seq++) {
      const m = messageOf(buf, 5, seq);
      if (m.length > 8 && rings.length === 1) m.fill(0, 8); // one ring: only 8-byte slots
      assert.equal(queue.trySend(m.subarray(0, rings.length === 1 ? 8 : m.length)), true);
      if (seq % 2 === 0 || seq === 40) {
        for (let n; (n = queue.tryReceive(dst)) >= 0;) {
          assert.equal(new DataView(dst.buffer).getUint32(4, true), next++, "in order across the wrap");
          assert.ok(n <= 64);
        }
      }
    }
    assert.equal(next, 41);
  }
});

test("message queue: handles, offsets, kinds and frees are checked", () => {
  const { sm, segment, queue } = privateQueue({ slots: 4, slotSize: 8 });
  using _ = sm;
  const fifo = segment.allocFifo(4096)!;
  assert.throws(() => segment.fifoAt(queue.offset), RangeError, "a queue is no fifo");
  assert.throws(() => segment.messageQueueAt(fifo.offset), RangeError, "a fifo is no queue");
  assert.throws(() => segment.messageQueueAt(queue.offset + 64), RangeError);
  assert.throws(() => segment.messageQueueAt(-1), RangeError);
  assert.throws(() => segment.allocMessageQueue({ slots: 0, slotSize: 8 }), RangeError);
  assert.throws(() => segment.allocMessageQueue({ rings: [] }), RangeError);
  assert.throws(() => segment.allocMessageQueue({ slots: 4, slotSize: 0 }), RangeError);
  assert.throws(() => queue.trySend([1] as unknown as Uint8Array), TypeError);
  assert.equal(segment.info().messageQueues, 1);
  assert.deepEqual(segment.messageQueues().map((q) => q.offset), [queue.offset]);
  assert.deepEqual(segment.fifos().map((f) => f.offset), [fifo.offset]);
  const other = segment.messageQueueAt(queue.offset);
  segment.freeMessageQueue(queue);
  assert.throws(() => other.trySend(new Uint8Array(1)), isCode("freed"));
  assert.throws(() => segment.freeMessageQueue(other), isCode("freed"));
  assert.equal(segment.info().messageQueues, 0);
  assert.equal(segment.allocMessageQueue({ slots: 1 << 16, slotSize: 1 << 10 }), null, "no room: null");
  assert.throws(() => segment.allocMessageQueue({ slots: 1 << 20, slotSize: 1 << 20 }), RangeError, "too large");
});

test("message queue: a peer scribbling on the queue's header and slots gets typed errors only", () => {
  const { sm, segment } = privateQueue({ slots: 2, slotSize: 8 });
  using _ = sm;
  const template = segment.allocMessageQueue({ rings: [{ slots: 4, slotSize: 16 }, { slots: 3, slotSize: 64 }] })!;
  const start = template.offset >>> 2;
  const words = (FIFO_HEADER_SIZE + MQ_RINGS + 2 * 192 + 4 * 40 + 3 * 88) >>> 2;
  const saved = segment.u32.slice(start, start + words);
  const kinds = new Map<string, number>();
  const buf = new Uint8Array(64);
  for (let seed = SEED + 1; seed <= SEED + 300; seed++) {
    segment.u32.set(saved, start);
    const rand = xorshift(seed);
    const queue = segment.messageQueueAt(template.offset);
    for (let i = 0; i < 5; i++) queue.trySend(messageOf(buf, 1, i + 1));
    for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
      const word = start + (FIFO_HEADER_SIZE >>> 2) + Math.floor(rand() * (words - (FIFO_HEADER_SIZE >>> 2)));
      segment.u32[word] = rand() < 0.5 ? Math.floor(rand() * 2 ** 32) : Math.floor(rand() * 64);
    }
    for (
      const op of [
        () => segment.messageQueueAt(template.offset),
        () => queue.trySend(messageOf(buf, 1, 9)),
        () => queue.tryReceive(new Uint8Array(64)),
        () => queue.receiveBatch(() => {}),
        () => queue.size,
        () => queue.toString(),
      ]
    ) {
      try {
        op();
      } catch (error) {
        assert.ok(error instanceof SegmentError || error instanceof RangeError, `seed ${seed}: ${error}`);
        const kind = error instanceof SegmentError ? error.code : "RangeError";
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
    }
  }
  assert.ok((kinds.get("corrupt") ?? 0) > 20, `corruption was reported: ${[...kinds]}`);
  segment.u32.set(saved, start);
});

test("message queue: a slot held for an instant by a producer with a stale position does not move the tail", async () => {
  const name = uniqueName("mqstale");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const queue = segment.allocMessageQueue({ slots: 4, slotSize: 8 })!;
  using other = new SegmentMain(); // a live process of its own (its own slot lock)
  const stale = other.attach({ type: "shm", name });
  const data = queue.offset + FIFO_HEADER_SIZE;
  const tailWord = (data + MQ_RINGS + MQR_TAIL) >>> 2;
  const writerOf = (position: number) =>
    (data + messageQueueHeaderBytes(1) + (position % 4) * messageSlotStride(8) + MQS_WRITER) >>> 2;
  const u32 = segment.u32;
  // What a producer holding a stale position leaves for an instant: the writer word of the
  // tail's free slot holds its tag, with no claim of this position recorded.
  Atomics.store(u32, writerOf(0), stale.liveness.ownTag);
  assert.equal(queue.trySend(Uint8Array.of(1)), false, "busy, like full");
  assert.equal(Atomics.load(u32, tailWord), 0, "the tail did not move past the unclaimed slot");
  Atomics.store(u32, writerOf(0), 0); // the stale producer gave it back
  assert.equal(queue.trySend(Uint8Array.of(2)), true);
  const dst = new Uint8Array(8);
  assert.equal(queue.tryReceive(dst), 1);
  assert.equal(dst[0], 2);
  // Held by a process that died in that instant: the consumer skips the slot; nothing is lost.
  Atomics.store(u32, writerOf(1), (9 << 8) | 200); // a tag no live process holds
  assert.equal(queue.trySend(Uint8Array.of(3)), false);
  assert.equal(queue.tryReceive(dst), -1, "held up: first look");
  await sleep(40);
  assert.equal(queue.tryReceive(dst), -1, "the dead holder's slot is skipped, and nothing was in it");
  assert.equal(queue.trySend(Uint8Array.of(4)), true);
  assert.equal(queue.tryReceive(dst), 1);
  assert.equal(dst[0], 4);
  assert.equal(queue.size, 0);
  other.delete(stale);
});

/** A shm segment with one two-ring queue, for the cross-process tests. */
function sharedQueue(tag: string, spec = { rings: [{ slots: 64, slotSize: 16 }, { slots: 128, slotSize: 64 }] }) {
  const name = uniqueName(tag);
  const sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  return { name, sm, segment, queue: segment.allocMessageQueue(spec)! };
}

/** Receives until `done()`; checks every message and each producer's order; returns what each sent. */
async function consume(queue: MessageQueue, done: () => boolean, allowGaps = false) {
  const last = new Map<number, number>();
  let count = 0;
  let previous = performance.now();
  let longestGap = 0;
  const dst = new Uint8Array(64);
  const take = (bytes: Uint8Array, length: number) => {
    const now = performance.now();
    if (!done()) longestGap = Math.max(longestGap, now - previous);
    previous = now;
    const { id, seq } = checkMessage(bytes, length);
    const before = last.get(id) ?? 0;
    if (allowGaps ? seq <= before : seq !== before + 1) throw new Error(`producer ${id}: ${seq} after ${before}`);
    last.set(id, seq);
    count++;
  };
  for (;;) {
    if (queue.receiveBatch(take, 64) > 0) continue;
    if (done() && queue.size === 0) break;
    const n = await queue.receive(dst, { timeoutMs: 200 });
    if (n >= 0) take(dst, n);
  }
  return { last, count, longestGap };
}

/**
 * Four producer processes (2 of this runtime, 2 of the other) send `per` messages each into
 * `queue`, sleeping whenever it is full; this process receives and checks every one. The producers
 * sleep often, and each must be woken by the free that makes room, never left for the sleepers'
 * re-check every 2 s: no wait for a message of a second or more.
 */
async function fourProducers(name: string, queue: MessageQueue, per: number): Promise<void> {
  const peers: Peer[] = [0, 1, 2, 3].map((i) =>
    startPeer(i % 2 === 0 ? RUNTIME : OTHER, "mq_peer", [
      "produce",
      name,
      String(queue.offset),
      String(i + 1),
      String(per),
    ])
  );
  let finished = 0;
  const ends = peers.map((p) => p.done.then((r) => (finished++, r)));
  const { last, count, longestGap } = await consume(queue, () => finished === 4);
  for (const end of await Promise.all(ends)) expectSuccess(end, "producer");
  assert.equal(count, 4 * per);
  for (let id = 1; id <= 4; id++) assert.equal(last.get(id), per);
  assert.ok(longestGap < 1_000, `the consumer waited ${longestGap.toFixed(0)} ms for a message`);
}

test(`message queue: 4 producers (2 ${RUNTIME}, 2 ${OTHER}) send 1M messages; every one checked, each producer in order`, async () => {
  const { name, sm, queue } = sharedQueue("mq4");
  using _ = sm;
  await fourProducers(name, queue, 250_000);
  sm.delete(sm.get(0)!);
  assert.deepEqual(shmEntries(name), []);
});

test(`message queue: 4 producers (2 ${RUNTIME}, 2 ${OTHER}) asleep by turns on a queue of 2 slots; no sleeper is left for the re-check`, async () => {
  // Every send finds the queue full and sleeps, so the producers arm the shared waiter word over
  // each other all the time, and each must also be woken when its arm was overwritten.
  const { name, sm, queue } = sharedQueue("mqtiny", { rings: [{ slots: 2, slotSize: 64 }] });
  using _ = sm;
  await fourProducers(name, queue, LONG ? 50_000 : 5_000);
});

test(`message queue: a consumer asleep in receive is woken by a ${OTHER} producer`, async () => {
  const { name, sm, queue } = sharedQueue("mqwake");
  using _ = sm;
  // One short wait first: a runtime that waits in worker threads (Bun, Node) starts one now,
  // and that start-up is not what the measurement below is about.
  assert.equal(await queue.receive(new Uint8Array(64), { timeoutMs: 20 }), -1);
  const peer = startPeer(OTHER, "mq_peer", ["late", name, String(queue.offset), "300"]);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const n = await queue.receive(new Uint8Array(64), { timeoutMs: 10_000 });
  const waited = performance.now() - started;
  const used = process.cpuUsage(cpu);
  expectSuccess(await peer.done, "late producer");
  assert.ok(n > 0);
  assert.ok(waited >= 250, `woke after ${waited} ms, when the message came`);
  assert.ok((used.user + used.system) / 1000 < waited / 2, "slept meanwhile");
  assert.equal(await queue.receive(new Uint8Array(64), { timeoutMs: 50 }), -1, "then times out");
});

test(`message queue: every producer asleep on a full queue is woken when room appears (2 ${RUNTIME}, 2 ${OTHER})`, async () => {
  // Four producer processes sleep in send() on a full queue; the consumer frees the four slots
  // at once. Each producer must be woken by that, not by a periodic re-check (every 2 s): they
  // share the queue's one waiter word, so a single wake-up of whoever armed it last is not enough.
  const { name, sm, queue } = sharedQueue("mqfull", { rings: [{ slots: 4, slotSize: 64 }] });
  using _ = sm;
  const buf = new Uint8Array(64);
  for (let seq = 1; seq <= 4; seq++) assert.ok(queue.trySend(messageOf(buf, 9, seq)));
  const peers: Peer[] = [0, 1, 2, 3].map((i) =>
    startPeer(i % 2 === 0 ? RUNTIME : OTHER, "mq_peer", ["produce", name, String(queue.offset), String(i + 1), "1"])
  );
  try {
    await Promise.all(peers.map((p) => p.line(/^WAITING/)));
    await sleep(500); // each is parked in its event loop by now
    const dst = new Uint8Array(64);
    for (let seq = 1; seq <= 4; seq++) assert.equal(checkMessage(dst, queue.tryReceive(dst)).seq, seq);
    const freed = performance.now();
    const from = new Set<number>();
    while (from.size < 4) {
      const n = await queue.receive(dst, { timeoutMs: 5_000 });
      assert.ok(n >= 0, `only producers ${[...from]} sent within 5 s`);
      from.add(checkMessage(dst, n).id);
    }
    const took = performance.now() - freed;
    assert.ok(took < 500, `the last sleeping producer sent ${took.toFixed(0)} ms after the room appeared`);
    for (const p of peers) expectSuccess(await p.done, "producer");
  } finally {
    for (const p of peers) p.kill();
  }
});

test("message queue: forged bits of sleeping producers and a forged waiter word cost looks, never a crash or a lost wake-up", async () => {
  const { name, sm, segment, queue } = sharedQueue("mqbits", { rings: [{ slots: 2, slotSize: 64 }] });
  using _ = sm;
  const buf = new Uint8Array(64);
  assert.ok(queue.trySend(messageOf(buf, 1, 1)) && queue.trySend(messageOf(buf, 1, 2)));
  const sent = queue.send(messageOf(buf, 2, 1), { timeoutMs: 5_000 }); // asleep: the queue is full
  await sleep(50);
  const d = (queue.offset + FIFO_HEADER_SIZE) >>> 2;
  const bits = d + MQ_SPACE_SLEEPERS / 4;
  assert.notEqual(Atomics.load(segment.u32, d + MQ_SPACE_WAITER / 4), 0, "the sleeping producer armed the waiter word");
  assert.ok(segment.u32.subarray(bits, bits + MQ_SPACE_SLEEPER_WORDS).some((w) => w !== 0), "and marked its process");
  // A peer names a process that does not exist in the waiter word, and every process slot in the bits.
  Atomics.store(segment.u32, d + MQ_SPACE_WAITER / 4, 0xdead_beef);
  segment.u32.fill(0xffff_ffff, bits, bits + MQ_SPACE_SLEEPER_WORDS);
  const dst = new Uint8Array(64);
  assert.equal(checkMessage(dst, queue.tryReceive(dst)).seq, 1);
  assert.deepEqual([...segment.u32.subarray(bits, bits + MQ_SPACE_SLEEPER_WORDS)], new Array(8).fill(0), "bits taken");
  const started = performance.now();
  assert.equal(await sent, true);
  assert.ok(performance.now() - started < 1_000, "woken through its bit, not by the re-check every 2 s");
  sm.delete(sm.get(0)!);
  assert.deepEqual(shmEntries(name), []);
});

/** A raw wait on `queue`'s room, as a producer's send makes one, with `ready` and `announce` of the test's own. */
function spaceWatch(queue: MessageQueue, ready: () => boolean, announce: () => void) {
  const d = (queue.offset + FIFO_HEADER_SIZE) >>> 2;
  return {
    chunk: queue.offset,
    seq: d + MQ_SPACE_SEQ / 4,
    waiter: d + MQ_SPACE_WAITER / 4,
    check: () => {},
    ready,
    peer: () => 0,
    announce,
  };
}

test("message queue: a producer whose wait ends leaves the shared waiter word armed for a producer that sleeps on", async () => {
  // Three SegmentMains of one process act as three processes: C the consumer, P and Q producers.
  // P sleeps in send() on the full queue; Q then arms the queue's waiter word over P's (as a
  // producer that finds the queue full does) and its wait ends at once. When Q's wait let go of
  // the word, as a fifo's waits do, only P's mark was left and the consumer, finding the word
  // clear, woke nobody: P slept on until the re-check every 2 s.
  const { name, sm, queue } = sharedQueue("mqshared", { rings: [{ slots: 1, slotSize: 64 }] });
  using _ = sm;
  using smP = new SegmentMain();
  using smQ = new SegmentMain();
  const segQ = smQ.attach({ type: "shm", name });
  const buf = new Uint8Array(64);
  assert.ok(queue.trySend(messageOf(buf, 1, 1)));
  const sent = smP.attach({ type: "shm", name }).messageQueueAt(queue.offset).send(messageOf(buf, 2, 1));
  const watch = (ready: () => boolean) => spaceWatch(queue, ready, () => {}); // a shared word, like a producer's
  assert.deepEqual(await segQ.sleeper.sleep([watch(() => false)], { timeoutMs: 1 }), []); // Q's sleeper set up
  await sleep(100); // P is parked
  let looks = 0;
  assert.deepEqual(await segQ.sleeper.sleep([watch(() => ++looks === 2)], {}), [0]); // armed, then ready at its look
  await sleep(10); // Q's wait has let go
  const dst = new Uint8Array(64);
  assert.equal(checkMessage(dst, queue.tryReceive(dst)).id, 1); // room for P
  const started = performance.now();
  assert.equal(await sent, true);
  assert.ok(performance.now() - started < 1_000, `P slept ${(performance.now() - started).toFixed(0)} ms more`);
});

test("message queue: a producer marks itself before it arms the shared waiter word, so a consumer that clears the word in between still wakes it", async () => {
  // As above, three SegmentMains of one process act as the consumer and producers P and Q. P's
  // wait is a producer's, with a hook in its mark: there, Q arms the waiter word over P's, the
  // consumer frees a slot and wakes whom the word and the marks name (Q), and Q takes the slot.
  // Had P armed the word before it marked itself, the consumer would have cleared P's arm without
  // seeing P's mark, and P would sleep through the next free until the re-check every 2 s.
  const { name, sm, segment, queue } = sharedQueue("mqorder", { rings: [{ slots: 1, slotSize: 64 }] });
  using _ = sm;
  using smP = new SegmentMain();
  using smQ = new SegmentMain();
  const segP = smP.attach({ type: "shm", name });
  const segQ = smQ.attach({ type: "shm", name });
  const u32 = segment.u32;
  const d = (queue.offset + FIFO_HEADER_SIZE) >>> 2;
  const [seq, waiter, bits] = [d + MQ_SPACE_SEQ / 4, d + MQ_SPACE_WAITER / 4, d + MQ_SPACE_SLEEPERS / 4];
  const wake = () => {
    // The consumer after a free (MessageQueue's own wake-up of the producers).
    if (Atomics.load(u32, waiter) === 0) return;
    segment.sleeper.notify(seq, waiter, queue.offset);
    segment.sleeper.notifyMarked(bits, MQ_SPACE_SLEEPER_WORDS, queue.offset);
  };
  const slotP = segP.liveness.ownTag & 0xff;
  let room = false;
  let hooked = false;
  const watch = (ready: () => boolean, announce: () => void) => spaceWatch(queue, ready, announce);
  assert.deepEqual(await segP.sleeper.sleep([watch(() => false, () => {})], { timeoutMs: 1 }), []); // set up
  const asleep = segP.sleeper.sleep([watch(() => room, () => {
    if (!hooked) {
      hooked = true;
      Atomics.store(u32, waiter, segQ.liveness.ownTag);
      room = true;
      wake();
      room = false;
    }
    Atomics.or(u32, bits + (slotP >>> 5), 1 << (slotP & 31));
  })], {});
  assert.ok(hooked);
  await sleep(50); // P is parked
  room = true;
  wake();
  const started = performance.now();
  assert.deepEqual(await asleep, [0]);
  assert.ok(performance.now() - started < 1_000, `P slept ${(performance.now() - started).toFixed(0)} ms more`);
});

test("message queue: sends and receives of one handle made without awaiting the one before keep the order made", async () => {
  const { sm, queue } = sharedQueue("mqorder2", { rings: [{ slots: 2, slotSize: 64 }] });
  using _ = sm;
  const buf = new Uint8Array(64);
  const messages = Array.from({ length: 12 }, (_, i) => messageOf(new Uint8Array(64), 1, i + 1).slice());
  const sends = messages.map((m) => queue.send(m, { timeoutMs: 5_000 })); // all but two wait for room
  for (let seq = 1; seq <= messages.length; seq++) {
    const n = await queue.receive(buf, { timeoutMs: 5_000 });
    assert.equal(checkMessage(buf, n).seq, seq);
  }
  assert.deepEqual(await Promise.all(sends), messages.map(() => true));
  // Receives made at once, before the messages come: each gets the next one, in the order made.
  const dsts = messages.map(() => new Uint8Array(64));
  const receives = dsts.map((dst) => queue.receive(dst, { timeoutMs: 5_000 }));
  assert.equal(await queue.receive(new Uint8Array(64), { timeoutMs: 10 }), -1, "a queued receive times out alone");
  for (const m of messages) await queue.send(m);
  const lengths = await Promise.all(receives);
  dsts.forEach((dst, i) => assert.equal(checkMessage(dst, lengths[i]).seq, i + 1));
});

const KILLS = LONG ? 200 : 30;
test(`message queue: ${KILLS} producers SIGKILLed mid-send; the survivors' messages all arrive, in order`, async () => {
  const { name, sm, queue } = sharedQueue("mqkill");
  using _ = sm;
  const offset = String(queue.offset);
  const survivorCount = 20_000;
  const survivors = [
    startPeer(RUNTIME, "mq_peer", ["produce", name, offset, "1", String(survivorCount)]),
    startPeer(OTHER, "mq_peer", ["produce", name, offset, "2", String(survivorCount)]),
  ];
  let survivorsDone = 0;
  const survivorEnds = survivors.map((p) => p.done.then((r) => (survivorsDone++, r)));
  const rand = xorshift(SEED + 0x51);
  let killing = true;
  const killer = (async () => {
    for (let k = 0; k < KILLS; k++) {
      const victim = startPeer(k % 2 === 0 ? OTHER : RUNTIME, "mq_peer", ["forever", name, offset, String(100 + k)]);
      await victim.line(/^READY/);
      await sleep(1 + Math.floor(rand() * 25));
      victim.kill("SIGKILL");
      await victim.done;
    }
    killing = false;
  })();
  const { last, longestGap } = await consume(queue, () => !killing && survivorsDone === 2, true);
  assert.ok(longestGap < 1500, `a dead producer's slot held the consumer up for ${longestGap} ms`);
  await killer;
  for (const end of await Promise.all(survivorEnds)) expectSuccess(end, "survivor");
  assert.equal(last.get(1), survivorCount, "every message of survivor 1");
  assert.equal(last.get(2), survivorCount, "every message of survivor 2");
  // Still usable, and nothing left claimed.
  assert.equal(queue.trySend(messageOf(new Uint8Array(64), 9, 1)), true);
  assert.equal(queue.tryReceive(new Uint8Array(64)) > 0, true);
  assert.equal(queue.size, 0);
  sm.delete(sm.get(0)!);
  assert.deepEqual(shmEntries(name), []);
});

test("message queue: receiveBatch publishes the head once; a consumer that died mid-batch is taken over", () => {
  const { sm, segment, queue } = privateQueue({ slots: 8, slotSize: 8 });
  using _ = sm;
  const headWord = (queue.offset + FIFO_HEADER_SIZE + MQ_RINGS + 128) >>> 2;
  for (let i = 1; i <= 6; i++) assert.equal(queue.trySend(Uint8Array.of(i)), true);
  let seenHead = -1;
  assert.equal(queue.receiveBatch(() => (seenHead = Atomics.load(segment.u32, headWord)), 2), 2);
  assert.equal(seenHead, 0, "the head stays put during the batch");
  assert.equal(Atomics.load(segment.u32, headWord), 2, "and is published at its end");
  // A consumer killed mid-batch: slots 2 and 3 released, its head never published.
  const dying = segment.messageQueueAt(queue.offset);
  let calls = 0;
  assert.throws(() =>
    dying.receiveBatch(() => {
      if (++calls === 3) throw new Error("killed");
    })
  );
  Atomics.store(segment.u32, headWord, 2); // what a SIGKILL before the publication leaves
  const got: number[] = [];
  const next = segment.messageQueueAt(queue.offset);
  next.receiveBatch((bytes) => got.push(bytes[0]));
  assert.deepEqual(got, [5, 6], "the restarted consumer steps over what the dead one read");
  assert.equal(queue.size, 0);
});

test("message queue: tryReceive, receive or receiveBatch inside a batch's handler is a TypeError; none is handed twice", async () => {
  const { sm, queue } = privateQueue({ slots: 4, slotSize: 8 });
  using _ = sm;
  for (let i = 1; i <= 4; i++) assert.equal(queue.trySend(Uint8Array.of(i)), true);
  const got: number[] = [];
  const inner: unknown[] = [];
  const pending: Promise<unknown>[] = [];
  assert.equal(
    queue.receiveBatch((bytes) => {
      got.push(bytes[0]);
      if (bytes[0] !== 1) return;
      // A slot freed in here, refilled by a producer, would be freed again by the batch.
      for (
        const nested of [
          () => queue.tryReceive(new Uint8Array(8)),
          () => queue.receiveBatch(() => got.push(-1)),
        ]
      ) {
        try {
          nested();
        } catch (error) {
          inner.push(error);
        }
      }
      pending.push(queue.receive(new Uint8Array(8)).catch((error) => inner.push(error)));
      assert.equal(queue.trySend(Uint8Array.of(5)), false, "the queue is still full: nothing was taken out");
    }),
    4,
  );
  await Promise.all(pending);
  assert.deepEqual(got, [1, 2, 3, 4]);
  assert.equal(inner.length, 3);
  for (const error of inner) assert.ok(error instanceof TypeError, String(error));
  assert.equal(queue.trySend(Uint8Array.of(5)), true);
  const dst = new Uint8Array(8);
  assert.equal(queue.tryReceive(dst), 1);
  assert.equal(dst[0], 5, "and the queue goes on");
  assert.equal(queue.tryReceive(dst), -1);
});

test("message queue: a batch's handler that frees the queue or deletes the segment ends the batch; nothing is written after", () => {
  const { sm, segment, queue } = privateQueue({ slots: 8, slotSize: 64 });
  using _ = sm;
  for (let i = 1; i <= 6; i++) assert.equal(queue.trySend(Uint8Array.of(i)), true);
  const got: number[] = [];
  let fifo: ReturnType<typeof segment.allocFifo> = null;
  const pattern = Uint8Array.from({ length: 900 }, (_, i) => (i * 7 + 3) & 0xff);
  assert.equal(
    queue.receiveBatch((bytes) => {
      got.push(bytes[0]);
      if (bytes[0] !== 2) return;
      segment.freeMessageQueue(queue);
      fifo = segment.allocFifo(900)!; // the queue's chunk, its slots' words under the fifo's bytes
      fifo.enqueue(pattern);
    }),
    2,
  );
  assert.deepEqual(got, [1, 2]);
  assert.equal(fifo!.offset, queue.offset, "the fifo took the queue's chunk (else this test shows nothing)");
  const back = new Uint8Array(900);
  assert.equal(fifo!.dequeue(back), 900);
  assert.deepEqual(back, pattern, "the batch wrote nothing into the fifo that took the chunk");

  using shm = new SegmentMain();
  const named = shm.create({ type: "shm", name: uniqueName("mq-delete"), size: 1 << 20 });
  const other = named.allocMessageQueue({ slots: 8, slotSize: 8 })!;
  for (let i = 1; i <= 6; i++) other.trySend(Uint8Array.of(i));
  const seen: number[] = [];
  assert.equal(other.receiveBatch((bytes) => seen.push(bytes[0]) === 2 && shm.delete(named)), 2);
  assert.deepEqual(seen, [1, 2]);
  assert.throws(() => other.tryReceive(new Uint8Array(8)), isCode("deleted"));
});
