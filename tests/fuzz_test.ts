// Fuzzing the shared headers while another process uses them: a scribbler of the other runtime
// overwrites allocator and fifo header words (tests/peers/scribbler.ts) while this process
// streams, peeks, waits, allocates and frees. Only the library's typed errors may come out, and
// the library never writes outside the fifo it is using: a canary fifo that nobody uses keeps
// every byte of its chunk. Fixed seeds (SVM_SEED shifts them); SVM_LONG=1 scribbles for a minute.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Fifo, SegmentError, SegmentMain } from "../mod.ts";
import { chunkBytes } from "../src/layout.ts";
import { OTHER, RUNTIME, SEED, shmEntries, startPeer, uniqueName, xorshift } from "./helpers.ts";

const LONG = process.env.SVM_LONG === "1";
const MS = LONG ? 60_000 : 2_500;

test(`fuzz: a ${OTHER} peer scribbles on shared headers while ${RUNTIME} works; typed errors only, the canary untouched`, async () => {
  const name = uniqueName("fuzz");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  const a = segment.allocFifo(4096)!;
  const b = segment.allocFifo(10_000)!;
  const canary = segment.allocFifo(4096)!;
  canary.enqueue(Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff));
  const canaryBytes = () => segment.u8.slice(canary.offset, canary.offset + chunkBytes(0));
  const before = canaryBytes();
  const peer = startPeer(OTHER, "scribbler", [
    name,
    String(SEED + 777),
    String(MS),
    String(canary.offset),
    String(a.offset),
    String(b.offset),
  ]);
  const kinds = new Map<string, number>();
  const unexpected: string[] = [];
  const attempt = (what: string, op: () => unknown) => {
    try {
      op();
    } catch (error) {
      if (error instanceof SegmentError || error instanceof RangeError) {
        const kind = error instanceof SegmentError ? `SegmentError ${error.code}` : "RangeError";
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      } else {
        unexpected.push(`${what}: ${error}`);
      }
    }
  };
  const rand = xorshift(SEED + 4242);
  const buf = new Uint8Array(8192);
  const held: Fifo[] = [];
  let rounds = 0;
  try {
    await peer.line(/^SCRIBBLING/);
    const end = performance.now() + MS;
    while (performance.now() < end) {
      rounds++;
      for (const f of [a, b]) {
        attempt("enqueue", () => f.enqueue(buf.subarray(0, 1 + Math.floor(rand() * 3000))));
        attempt("dequeue", () => f.dequeue(buf.subarray(0, 1 + Math.floor(rand() * 3000))));
        attempt("peek", () => f.peek(Math.floor(rand() * 100), buf.subarray(0, 500)));
        attempt("segments", () => [...f.readSegments(), ...f.writeSegments()].length);
        attempt("ooo", () => f.enqueueWithOffset(Math.floor(rand() * 200), buf.subarray(0, 10)));
        attempt("drop", () => f.dequeueDrop(Math.floor(rand() * 50)));
        attempt("sizes", () => f.maxDequeue + f.maxEnqueue);
      }
      attempt("fifoAt", () => segment.fifoAt(pick(rand, [a.offset, b.offset, canary.offset])));
      attempt("alloc", () => {
        const f = segment.allocFifo(1 + Math.floor(rand() * 9000));
        if (f) held.push(f);
      });
      if (held.length > 6 || (held.length > 0 && rand() < 0.4)) {
        attempt("free", () => segment.freeFifo(held.splice(Math.floor(rand() * held.length), 1)[0]));
      }
      attempt("info", () => segment.info());
      attempt("toString", () => segment.toString());
      if (rounds % 50 === 0) {
        await a.waitForData({ timeoutMs: 1 }).catch((e) =>
          attempt("wait", () => {
            throw e;
          })
        );
      }
    }
  } finally {
    peer.kill("SIGKILL");
  }
  await peer.done;
  assert.deepEqual(unexpected, [], "only typed errors");
  assert.deepEqual(canaryBytes(), before, "the canary's chunk is byte for byte what it was");
  assert.ok(rounds > 100, `rounds ${rounds}`);
  assert.ok((kinds.get("SegmentError corrupt") ?? 0) > 10, `corruption was seen: ${[...kinds]}`);
  sm.delete(segment);
  assert.deepEqual(shmEntries(name), []);
});

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}
