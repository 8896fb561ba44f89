/**
 * Micro-benchmarks of the fifo and the allocator in one process, with tinybench; runs under
 * Deno (`deno run -A bench/micro.ts`) and Bun (`bun bench/micro.ts`). Each task loops
 * {@link INNER} times so that tinybench's own overhead per call does not dominate; figures are
 * per operation. `--quick` runs a few iterations only (the test suite uses it).
 *
 * @module
 */

import { Bench } from "tinybench";
import { SegmentMain, waitAny, WaitSet } from "../mod.ts";

const quick = process.argv.includes("--quick");
const INNER = 1000;

using sm = new SegmentMain();
const segment = sm.create({ type: "private", name: "micro", size: 16 << 20 });
const fifo = segment.allocFifo(1 << 20)!;
const bufs = new Map([64, 1024, 65536].map((n) => [n, { src: new Uint8Array(n).fill(1), dst: new Uint8Array(n) }]));

const bench = quick ? new Bench({ iterations: 3, time: 0, warmup: false }) : new Bench({ time: 500 });
for (const [size, { src, dst }] of bufs) {
  bench.add(`enqueue+dequeue ${size} B`, () => {
    for (let i = 0; i < INNER; i++) {
      fifo.enqueue(src);
      fifo.dequeue(dst);
    }
  });
}
{
  const { src, dst } = bufs.get(64)!;
  fifo.enqueue(bufs.get(1024)!.src);
  bench.add("peek 64 B", () => {
    for (let i = 0; i < INNER; i++) fifo.peek(i & 511, dst);
  });
  bench.add("out-of-order 64 B pair (offset write, then in-order write that joins it)", () => {
    for (let i = 0; i < INNER; i++) {
      fifo.enqueueWithOffset(64, src);
      fifo.enqueue(src);
      fifo.dequeueDrop(128);
    }
  });
}
{
  // Fresh views of one buffer, as a loop that finishes a partial write with `src.subarray(done)`
  // makes: the check that a view is not the segment's own memory asks the mappings of an shm
  // segment once per buffer, not once per view.
  const shm = sm.create({ type: "shm", name: `svm-micro-${process.pid}-${Date.now()}`, size: 1 << 20 });
  const shmFifo = shm.allocFifo(65536)!;
  const src = new Uint8Array(4096).fill(1);
  const dst = new Uint8Array(4096);
  bench.add("enqueue+dequeue 64 B through fresh subarrays, shm segment", () => {
    for (let i = 0; i < INNER; i++) {
      const at = i & 1023;
      shmFifo.enqueue(src.subarray(at, at + 64));
      shmFifo.dequeue(dst.subarray(at, at + 64));
    }
  });
}
bench.add("allocFifo+freeFifo 4 KiB", () => {
  for (let i = 0; i < INNER; i++) segment.freeFifo(segment.allocFifo(4096)!);
});
{
  // fifoAt among many fifos: a binary search of this process's chunk index, not a walk.
  const many = sm.create({ type: "private", name: "many", size: (quick ? 8 : 280) << 20 });
  const offsets: number[] = [];
  for (let fifo = many.allocFifo(100); fifo; fifo = many.allocFifo(100)) offsets.push(fifo.offset);
  bench.add(`fifoAt among ${offsets.length} fifos`, () => {
    for (let i = 0; i < INNER; i++) many.fifoAt(offsets[(i * 7919) % offsets.length]);
  });
}

await bench.run();
fifo.dequeueDropAll();
const rows = bench.tasks.map((t) => {
  const r = t.result as { latency?: { mean: number }; mean?: number } | undefined;
  const meanMs = r?.latency?.mean ?? r?.mean ?? NaN;
  return { task: t.name, "ns/op": Number(((meanMs * 1e6) / INNER).toFixed(1)) };
});
{
  // A server's loop over 1000 fifos of an shm segment, in one process: a microtask writes a byte
  // to one fifo, the loop wakes, finds it and drains it. A WaitSet keeps its members registered;
  // waitAny registers all of them at each call.
  const shm = sm.create({ type: "shm", name: `svm-micro-set-${process.pid}-${Date.now()}`, size: 16 << 20 });
  const fifos = Array.from({ length: 1000 }, () => shm.allocFifo(4096)!);
  const one = new Uint8Array(1);
  using set = new WaitSet(fifos);
  const wakeUps = async (wait: () => Promise<unknown>, rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      const fifo = fifos[(i * 7919) % fifos.length];
      queueMicrotask(() => fifo.enqueue(one));
      await wait();
      fifo.dequeue(one);
    }
  };
  for (
    const [task, wait, rounds] of [
      ["WaitSet.wait() over 1000 fifos, one ready", () => set.wait(), quick ? 20 : 40_000],
      ["waitAny() over 1000 fifos, one ready", () => waitAny(fifos), quick ? 5 : 2_000],
    ] as const
  ) {
    await wakeUps(wait, rounds); // warm-up
    const t = performance.now();
    await wakeUps(wait, rounds);
    rows.push({ task, "ns/op": Number(((performance.now() - t) * 1e6 / rounds).toFixed(1)) });
  }
  sm.delete(shm);
}
console.table(rows);
const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.bun
  ? `bun ${versions.bun}`
  : versions.deno
  ? `deno ${versions.deno}`
  : `node ${versions.node}`;
console.log(`${runtime}, ${INNER} operations per task call${quick ? " (quick mode: not a measurement)" : ""}`);
