// The kill matrix: processes of both runtimes SIGKILLed at random points of their work and
// restarted. A stream's bytes are checked across every restart (nothing lost, duplicated or
// shifted), and the allocator's books balance after every kill (every chunk live or on its
// freelist). A quick run is part of `npm test`; SVM_LONG=1 runs hundreds of kills.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentMain } from "../mod.ts";
import { FF_HEAD, FF_TAIL } from "../src/layout.ts";
import {
  OTHER,
  type Peer,
  RUNTIME,
  type Runtime,
  shmEntries,
  startPeer,
  STREAM_PERIOD,
  streamTable,
  uniqueName,
  xorshift,
} from "./helpers.ts";

const LONG = process.env.SVM_LONG === "1";
const STREAM_KILLS = LONG ? 400 : 24;
const ALLOC_KILLS = LONG ? 300 : 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  `kill matrix, stream: ${RUNTIME} producer and ${OTHER} consumer killed ${STREAM_KILLS} times at random; every byte checked`,
  async () => {
    const name = uniqueName("killstream");
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name, size: 1 << 20 });
    const fifo = segment.allocFifo(3000)!; // not a power of two: the counters' period is 3000 * 1431655
    const rand = xorshift(0x6b11);
    let seed = 1;
    const start = (side: "produce" | "consume"): Peer =>
      startPeer(side === "produce" ? RUNTIME : OTHER, "stream_kill_peer", [
        side,
        name,
        String(fifo.offset),
        String(seed++),
      ]);
    const sides = { produce: start("produce"), consume: start("consume") };
    const kills = { produce: 0, consume: 0 };
    const counter = (field: number) => Atomics.load(segment.u32, (fifo.offset + field) >>> 2);
    try {
      await Promise.all([sides.produce.line(/^READY/), sides.consume.line(/^READY/)]);
      for (let k = 0; k < STREAM_KILLS; k++) {
        const side = rand() < 0.5 ? "produce" : "consume";
        await sleep(2 + Math.floor(rand() * 40));
        const victim = sides[side];
        victim.kill("SIGKILL");
        const end = await victim.done;
        assert.equal(end.signal, "SIGKILL", `${side} ended by itself: ${end.stdout} ${end.stderr}`);
        kills[side]++;
        sides[side] = start(side);
        await sides[side].line(/^READY/);
      }
      // Let the stream run a little after the last kill, then stop both and read the rest here.
      await sleep(50);
    } finally {
      for (const peer of Object.values(sides)) peer.kill("SIGKILL");
    }
    for (const [side, peer] of Object.entries(sides)) {
      const end = await peer.done;
      assert.doesNotMatch(end.stdout, /BAD/, `${side}: ${end.stdout}`);
    }
    const head = counter(FF_HEAD);
    const tail = counter(FF_TAIL);
    const table = streamTable();
    const rest = new Uint8Array(fifo.maxDequeue);
    fifo.dequeue(rest);
    for (let i = 0; i < rest.length; i++) {
      assert.equal(rest[i], table[(head + i) % STREAM_PERIOD], `byte at ${head + i}`);
    }
    assert.equal(head + rest.length, tail);
    assert.ok(tail > 20_000, `the stream moved on across the kills: ${tail} bytes`);
    assert.ok(kills.produce > 0 && kills.consume > 0, JSON.stringify(kills));
    sm.delete(segment);
    assert.deepEqual(shmEntries(name), []);
  },
);

test(
  `kill matrix, allocator: ${RUNTIME} and ${OTHER} churners killed ${ALLOC_KILLS} times; the books balance after each kill`,
  async () => {
    const name = uniqueName("killalloc");
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name, size: 32 << 20 });
    const rand = xorshift(0xa110c);
    let seed = 1;
    const runtimes: Runtime[] = [RUNTIME, OTHER];
    const start = (i: number): Peer =>
      startPeer(runtimes[i], "alloc_peer", ["churn", "shm", name, "0", String(seed++)]);
    const peers = [start(0), start(1)];
    try {
      await Promise.all(peers.map((p) => p.line(/^RUNNING/)));
      for (let k = 0; k < ALLOC_KILLS; k++) {
        const i = rand() < 0.5 ? 0 : 1;
        await sleep(2 + Math.floor(rand() * 30));
        peers[i].kill("SIGKILL");
        const end = await peers[i].done;
        assert.equal(end.signal, "SIGKILL", `churner ended by itself: ${end.stdout} ${end.stderr}`);
        // The audit takes the allocator lock: from the dead process if it died holding it.
        const books = segment.audit();
        assert.deepEqual(books.lost, [], `after kill ${k}: every chunk live or on its freelist`);
        // What the dead process held is orphaned; a service frees it.
        for (const orphan of segment.orphanedFifos()) segment.freeFifo(orphan);
        peers[i] = start(i);
        await peers[i].line(/^RUNNING/);
      }
    } finally {
      for (const peer of peers) peer.kill("SIGKILL");
    }
    for (const peer of peers) await peer.done;
    for (const orphan of segment.orphanedFifos()) segment.freeFifo(orphan);
    const books = segment.audit();
    assert.deepEqual(books.lost, []);
    assert.equal(books.live, 0, "nothing live once every churner is gone and its fifos freed");
    assert.equal(books.free, books.chunks);
    sm.delete(segment);
    assert.deepEqual(shmEntries(name), []);
  },
);
