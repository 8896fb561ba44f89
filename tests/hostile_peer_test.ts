// A misbehaving peer: random words scribbled over the shared headers (segment, allocator,
// freelists, fifos, chunked fifos' tables) must never crash or hang this process, and never make it touch memory
// outside the segment. Every operation either works or throws one of the library's errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Fifo, type MessageRing, SegmentError, SegmentMain } from "../mod.ts";
import { rmSync, writeFileSync } from "node:fs";
import { SEED, uniqueName, xorshift } from "./helpers.ts";
import { chunkTableWord, FF_HEAD, FIFO_HEADER_SIZE, RG_RECORDS } from "../src/layout.ts";

type Segment = ReturnType<SegmentMain["create"]>;
const LONG = process.env.SVM_LONG === "1";

/** What the process does with the segment after the peer's scribbles; freeing comes last. */
const SEGMENT_OPERATIONS: [string, (segment: Segment, fifos: Fifo[]) => unknown][] = [
  ["allocFifo", (segment) => segment.allocFifo(3000, "rx")],
  ["fifos", (segment) => segment.fifos().map((f) => f.size)],
  ["numFifos", (segment) => segment.numFifos],
  ["numFreeFifos", (segment) => segment.numFreeFifos()],
  ["freeBytes", (segment) => segment.freeBytes],
  ["toString", (segment) => segment.toString()],
  ["info", (segment) => segment.info()],
  ["preallocate", (segment) => segment.preallocateFifoPairs(4096, 4096, 2)],
];
const FIFO_OPERATIONS: [string, (fifo: Fifo, segment: Segment) => unknown][] = [
  ["fifoAt", (fifo, segment) => segment.fifoAt(fifo.offset).size],
  ["enqueue", (fifo) => fifo.enqueue(new Uint8Array(700))],
  ["enqueueWithOffset", (fifo) => fifo.enqueueWithOffset(100, new Uint8Array(300))],
  ["dequeue", (fifo) => fifo.dequeue(new Uint8Array(900))],
  ["peek", (fifo) => fifo.peek(10, new Uint8Array(900))],
  ["dequeueDrop", (fifo) => fifo.dequeueDrop(50)],
  ["segments", (fifo) => [fifo.readSegments(), fifo.writeSegments()]],
  ["exact", (fifo) => [fifo.enqueueExact(new Uint8Array(64)), fifo.dequeueExact(new Uint8Array(64))]],
  ["waitForDataSync", (fifo) => fifo.waitForDataSync({ timeoutMs: 0 })],
  ["tag", (fifo) => (fifo.tag = fifo.tag ^ 1)],
  ["setSize", (fifo) => fifo.chunked && fifo.setSize(Math.max(1, fifo.maxSize >> 1))],
  ["chunkCount", (fifo) => fifo.chunkCount],
  ["toString", (fifo) => fifo.toString()],
  ["freeFifo", (fifo, segment) => segment.freeFifo(fifo)],
];

/** The library's own errors; an engine error (an out-of-bounds typed-array access) is a bug. */
function allowed(error: unknown): boolean {
  if (error instanceof SegmentError) return true;
  if (!(error instanceof RangeError || error instanceof TypeError)) return false;
  const engine =
    /out of bounds|out-of-bounds|atomic access|invalid typed array|detached|call stack|is not (a|an|defined|iterable)\b|undefined|null|NaN/i;
  return !engine.test(error.message);
}

/** Runs operations, counting each error by kind and each error that is not the library's as a failure. */
class Tally {
  failures = 0;
  readonly kinds = new Map<string, number>();
  attempt(seed: number, name: string, op: () => unknown): void {
    try {
      op();
    } catch (error) {
      this.#count(seed, name, error);
    }
  }
  /** `attempt` of an asynchronous operation, which must also end: one still pending after 5 s is a failure. */
  async attemptAsync(seed: number, name: string, op: () => Promise<unknown>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        op(),
        new Promise((_, reject) => timer = setTimeout(() => reject(new Error(`${name} hung`)), 5_000)),
      ]);
    } catch (error) {
      this.#count(seed, name, error);
    } finally {
      clearTimeout(timer);
    }
  }
  #count(seed: number, name: string, error: unknown): void {
    if (!allowed(error)) {
      this.failures++;
      console.error(`seed ${seed} ${name}:`, error);
    }
    const kind = error instanceof SegmentError ? `SegmentError ${error.code}` : (error as Error).name;
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
  }
  /** No failure, and corruption seen and reported often enough (`minCorrupt` times) that the scribbles mattered. */
  check(minCorrupt = 50): void {
    assert.equal(this.failures, 0);
    const corrupt = this.kinds.get("SegmentError corrupt") ?? 0;
    assert.ok(corrupt > minCorrupt, `corruption was detected and reported: ${[...this.kinds]}`);
  }
}

test("random scribbles over every shared header: no crash, no hang, only the library's errors", () => {
  const tally = new Tally();
  for (let seed = SEED + 1; seed <= SEED + 1000; seed++) {
    const rand = xorshift(seed);
    using sm = new SegmentMain();
    const segment = sm.create({ type: "private", name: "hostile", size: 256 * 1024 });
    const fifos: Fifo[] = [];
    for (let i = 0; i < 6; i++) {
      // Every other fifo is chunked: its table words are scribbled on too.
      const size = 1 + Math.floor(rand() * 9000);
      fifos.push(segment.allocFifo(size, "none", { chunked: i % 2 === 1, chunkSize: 4096 })!);
    }
    for (const f of fifos) f.enqueue(new Uint8Array(Math.floor(rand() * f.size)));
    segment.freeFifo(fifos.pop()!);
    // The peer's scribbles: words of the segment header, the allocator header and freelists,
    // and the fifo headers, set to random, extreme or nearby values.
    const u32 = segment.u32;
    const targets = [0, 1, 2, 4, 5, 6, 7, 128, 129, 130, 131, 144, 145, 146, 147, 148, 149];
    for (const f of fifos) {
      for (let w = 0; w < 64; w++) targets.push(f.offset / 4 + w);
      if (f.chunked) { for (let slot = 0; slot < 8; slot++) targets.push(chunkTableWord(f.offset, slot)); }
    }
    for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
      const word = targets[Math.floor(rand() * targets.length)];
      const r = rand();
      u32[word] = r < 0.3 ? Math.floor(rand() * 2 ** 32) : r < 0.5 ? 0xffffffff : r < 0.7 ? 0 : (u32[word] + 64) >>> 0;
    }
    for (const [name, op] of SEGMENT_OPERATIONS) tally.attempt(seed, name, () => op(segment, fifos));
    for (const fifo of fifos) {
      for (const [name, op] of FIFO_OPERATIONS) tally.attempt(seed, name, () => op(fifo, segment));
    }
  }
  tally.check();
});

test("attaching to segments with random header bytes: a clear error or a usable segment, nothing else", () => {
  const name = uniqueName("hostile-attach");
  using sm = new SegmentMain({ timeoutSeconds: 0 });
  const template = sm.create({ type: "private", name, size: 64 * 1024 });
  for (let i = 0; i < 3; i++) template.allocFifo(4000)!.enqueue(new Uint8Array(100));
  const original = template.u8.slice();
  let attached = 0;
  let refused = 0;
  try {
    for (let seed = SEED + 1; seed <= SEED + 300; seed++) {
      const rand = xorshift(seed);
      const bytes = original.slice();
      bytes[20] = 1; // created as shm, so that it attaches as shm
      for (let k = 0; k < 1 + Math.floor(rand() * 8); k++) {
        const at = rand() < 0.7 ? Math.floor(rand() * 600) : 4096 + Math.floor(rand() * 3 * 4352);
        bytes[at] = Math.floor(rand() * 256);
      }
      writeFileSync(
        `/dev/shm/${name}`,
        bytes.subarray(0, rand() < 0.2 ? 4096 + Math.floor(rand() * 60_000) : bytes.length),
        { mode: 0o600 },
      );
      try {
        const seen = sm.attach({ type: "shm", name });
        try {
          seen.fifos().forEach((f) => f.peek(0, new Uint8Array(200)));
          void seen.toString();
          seen.allocFifo(100);
        } catch (error) {
          assert.ok(allowed(error), `seed ${seed}: ${error}`);
        }
        sm.delete(seen);
        attached++;
      } catch (error) {
        assert.ok(error instanceof SegmentError, `seed ${seed}: ${error}`);
        refused++;
      }
    }
  } finally {
    rmSync(`/dev/shm/${name}`, { force: true });
  }
  assert.ok(attached > 10 && refused > 10, `attached ${attached}, refused ${refused}`);
  assert.equal(sm.size, 1, "refused attaches left nothing in the pool");
});

/** What the process does with a message ring after the peer's scribbles; freeing comes last. */
const RING_OPERATIONS: [string, (ring: MessageRing, segment: Segment) => unknown][] = [
  ["messageRingAt", (ring, segment) => segment.messageRingAt(ring.offset).capacity],
  ["fresh producer", (ring, segment) => segment.messageRingAt(ring.offset).offer(new Uint8Array(40), 3)],
  ["offer", (ring) => ring.offer(new Uint8Array(1 + (ring.offset % 200)), 5)],
  ["claim", (ring) => ring.tryClaim(24, 6) >= 0 && ring.commit()],
  ["publish", (ring) => ring.publish()],
  ["poll", (ring) => ring.poll((bytes, at, length) => bytes.subarray(at, at + length).reduce((a, b) => a + b, 0))],
  ["poll again", (ring) => ring.poll(() => {}, 3)],
  ["tryReceive", (ring) => ring.tryReceive(new Uint8Array(ring.maxMessage))],
  ["isEmpty", (ring) => ring.isEmpty],
  ["isClosed", (ring) => [ring.isClosed, ring.isAborted]],
  ["toString", (ring) => ring.toString()],
  ["segment", (_ring, segment) => [segment.messageRings().length, segment.info(), segment.toString()]],
  ["close", (ring) => ring.close()],
  ["freeMessageRing", (ring, segment) => segment.freeMessageRing(ring)],
];

test("random scribbles over message rings' headers and records: only the library's errors, nothing outside the rings", () => {
  const tally = new Tally();
  for (let seed = SEED + 1; seed <= SEED + (LONG ? 20_000 : 600); seed++) {
    const rand = xorshift(seed);
    using sm = new SegmentMain();
    const segment = sm.create({ type: "private", name: "hostile-ring", size: 256 * 1024 });
    const canary = segment.allocFifo(3000)!;
    const pattern = Uint8Array.from({ length: 3000 }, (_, i) => (i * 31 + seed) & 0xff);
    canary.enqueue(pattern);
    const rings: MessageRing[] = [];
    for (let i = 0; i < 3; i++) rings.push(segment.allocMessageRing(1024 << Math.floor(rand() * 3))!);
    // Some records published, some read, some committed and not yet published.
    for (const ring of rings) {
      for (let k = Math.floor(rand() * 40); k > 0; k--) ring.offer(new Uint8Array(Math.floor(rand() * 120)), k);
      ring.publish();
      ring.poll(() => {}, Math.floor(rand() * 20));
      ring.offer(new Uint8Array(Math.floor(rand() * 50)), 9);
    }
    // The canary's chunk, from its header to the next ring (the allocator's own words may change).
    const next = Math.min(...rings.map((r) => r.offset).filter((at) => at > canary.offset));
    const canaryChunk = () => segment.u8.slice(canary.offset, next);
    const before = canaryChunk();
    // The peer's scribbles: words of the chunk and ring headers and of the record area.
    const u32 = segment.u32;
    for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
      const ring = rings[Math.floor(rand() * rings.length)];
      const span = rand() < 0.5 ? 512 : ring.capacity; // the headers and first records more often
      const word = ring.offset / 4 + Math.floor(rand() * ((FIFO_HEADER_SIZE + RG_RECORDS + span) / 4));
      const r = rand();
      u32[word] = r < 0.3
        ? Math.floor(rand() * 2 ** 32)
        : r < 0.45
        ? 0xffffffff
        : r < 0.6
        ? 0
        : r < 0.75
        ? 0x80000000 | Math.floor(rand() * 4096)
        : (u32[word] + 8 * (1 + Math.floor(rand() * 64))) >>> 0;
    }
    for (const ring of rings) {
      for (const [name, op] of RING_OPERATIONS) tally.attempt(seed, name, () => op(ring, segment));
    }
    assert.deepEqual(canaryChunk(), before, `seed ${seed}: the canary fifo's chunk changed`);
    const back = new Uint8Array(3000);
    assert.equal(canary.dequeue(back), 3000);
    assert.deepEqual(back, pattern, `seed ${seed}: the canary fifo's bytes`);
  }
  tally.check();
});

test("a client scribbling over its connection's fifos: the listener's side gets only the library's errors, another connection is untouched", async () => {
  const name = uniqueName("hostile-conn");
  using sm = new SegmentMain();
  using listener = await sm.listen(name, { fifoSize: 4096 });
  using good = await sm.connect(name);
  using goodServer = (await listener.accept())!;
  // The listener's side: each operation may work or throw the library's error, and must end.
  const tally = new Tally();
  for (let seed = SEED + 1; seed <= SEED + (LONG ? 1000 : 80); seed++) {
    const rand = xorshift(seed);
    using client = await sm.connect(name);
    using server = (await listener.accept())!;
    for (let i = Math.floor(rand() * 5); i >= 0; i--) await client.send(new Uint8Array(Math.floor(rand() * 600)));
    // The client's scribbles, over the fifo the listener's side reads: its header and its data.
    const fifo = client.tx;
    const u32 = client.segment.u32;
    const view = new DataView(client.segment.u8.buffer);
    for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
      const r = rand();
      const value = (old: number) =>
        r < 0.4 ? Math.floor(rand() * 2 ** 32) : r < 0.6 ? 0xffffffff : r < 0.8 ? 0 : (old + 4) >>> 0;
      const where = rand();
      if (where < 0.3) {
        // The length of the message at the head, unless it straddles the fifo's end.
        const at = u32[(fifo.offset + FF_HEAD) / 4] % fifo.size;
        if (at + 4 > fifo.size) continue;
        const byte = client.segment.u8.byteOffset + fifo.offset + FIFO_HEADER_SIZE + at;
        view.setUint32(byte, value(view.getUint32(byte, true)), true);
      } else {
        const words = where < 0.7 ? FIFO_HEADER_SIZE / 4 : FIFO_HEADER_SIZE / 4 + fifo.size / 4;
        const word = fifo.offset / 4 + Math.floor(rand() * words);
        u32[word] = value(u32[word]);
      }
    }
    for (let i = 0; i < 4; i++) await tally.attemptAsync(seed, "receive", () => server.receive({ timeoutMs: 5 }));
    await tally.attemptAsync(seed, "send", () => server.send(new Uint8Array(100), { timeoutMs: 5 }));
    // The other connection goes on, every byte as sent.
    const message = Uint8Array.from({ length: 1 + (seed % 300) }, (_, i) => (i * 7 + seed) & 0xff);
    await good.send(message);
    assert.deepEqual(await goodServer.receive({ timeoutMs: 5_000 }), message, `seed ${seed}: the other connection`);
  }
  tally.check(3); // only the library's errors, and corruption reported
});
