// Model-based test: random operations on a fifo and on a plain-JS model of it, many seeds; the
// results, the readable bytes and the out-of-order geometry must agree after every step.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Fifo, OooSegment } from "../mod.ts";
import { SegmentMain } from "../mod.ts";
import { privateFifo } from "./fifo_fixture.ts";
import { SEED } from "./helpers.ts";

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The model: stream positions as plain numbers, bytes in a map, out-of-order positions in a set. */
class Model {
  head: number;
  tail: number;
  readonly bytes = new Map<number, number>();
  readonly ooo = new Set<number>();
  cap: number;
  constructor(cap: number, start: number) {
    this.cap = cap;
    this.head = start;
    this.tail = start;
  }
  get used(): number {
    return this.tail - this.head;
  }
  get free(): number {
    return Math.max(0, this.cap - this.used);
  }
  enqueue(src: Uint8Array): number {
    const before = this.tail;
    const n = Math.min(src.length, this.free);
    for (let i = 0; i < n; i++) this.bytes.set(this.tail + i, src[i]);
    this.tail += n;
    while (this.ooo.has(this.tail)) this.tail++;
    for (const p of this.ooo) if (p < this.tail) this.ooo.delete(p);
    return this.tail - before;
  }
  enqueueWithOffset(offset: number, src: Uint8Array): boolean {
    if (offset + src.length > this.free) return false;
    for (let i = 0; i < src.length; i++) {
      this.bytes.set(this.tail + offset + i, src[i]);
      this.ooo.add(this.tail + offset + i);
    }
    return true;
  }
  read(offset: number, n: number): number[] {
    const k = Math.max(0, Math.min(n, this.used - offset));
    return Array.from({ length: k }, (_, i) => this.bytes.get(this.head + offset + i)!);
  }
  drop(n: number): number {
    const k = Math.min(n, this.used);
    for (let i = 0; i < k; i++) this.bytes.delete(this.head + i);
    this.head += k;
    return k;
  }
  segments(): OooSegment[] {
    const out: OooSegment[] = [];
    for (const p of [...this.ooo].sort((a, b) => a - b)) {
      const last = out[out.length - 1];
      const offset = p - this.tail;
      if (last && last.offset + last.length === offset) {
        out[out.length - 1] = { offset: last.offset, length: last.length + 1 };
      } else out.push({ offset, length: 1 });
    }
    return out;
  }
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/**
 * A chunked fifo of `cap` bytes in 4 KiB chunks (at most `most`), with `spareChunks` (undefined:
 * the default), in a segment with room for all of them.
 */
function chunkedFifo(
  cap: number,
  most: number,
  spareChunks: number | undefined,
): { sm: SegmentMain; fifo: Fifo; audit: () => number[] } {
  const sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "chunked-model", size: 8 * 1024 + 2 * most + (1 << 20) });
  const fifo = segment.allocFifo(cap, "rx", { chunked: true, chunkSize: 4096, maxSize: most, spareChunks })!;
  return { sm, fifo, audit: () => [...segment.audit().lost] };
}

function runSeed(seed: number, steps: number, chunked = false): void {
  const rand = prng(seed);
  const most = chunked ? 4096 + Math.floor(rand() * 5 * 4096) : 0;
  const cap = chunked ? 1 + Math.floor(rand() * most) : 1 + Math.floor(rand() * 300);
  const starts = [0, 0xffff_ffff - Math.floor(rand() * 2 * cap), Math.floor(rand() * 2 ** 32)];
  const start = starts[seed % 3];
  // Chunked: VPP's rule (no spare chunks), one spare, or the default, by seed.
  const made = chunked ? chunkedFifo(cap, most, [0, 1, undefined][seed % 3]) : { ...privateFifo(cap), audit: () => [] };
  const { sm, fifo } = made;
  using _ = sm;
  fifo.initPointers(start);
  const model = new Model(cap, start);
  const where = (op: string, i: number) => `seed ${seed} cap ${cap} step ${i}: ${op}`;
  for (let i = 0; i < steps; i++) {
    const pick = rand();
    const len = Math.floor(rand() * (cap + 8));
    let op: string;
    if (pick < 0.3) {
      op = `enqueue ${len}`;
      const src = randomBytes(rand, len);
      assert.equal(fifo.enqueue(src), model.enqueue(src), where(op, i));
    } else if (pick < 0.5) {
      const offset = Math.floor(rand() * cap);
      const n = Math.floor(rand() * Math.max(1, cap / 4));
      op = `enqueueWithOffset ${offset} ${n}`;
      const src = randomBytes(rand, n);
      assert.equal(fifo.enqueueWithOffset(offset, src), model.enqueueWithOffset(offset, src), where(op, i));
    } else if (pick < 0.75) {
      op = `dequeue ${len}`;
      const dst = new Uint8Array(len);
      const expected = model.read(0, len);
      model.drop(len);
      const n = fifo.dequeue(dst);
      assert.deepEqual([...dst.subarray(0, n)], expected, where(op, i));
    } else if (pick < 0.82) {
      const offset = Math.floor(rand() * (cap + 2));
      op = `peek ${offset} ${len}`;
      const dst = new Uint8Array(len);
      const n = fifo.peek(offset, dst);
      assert.deepEqual([...dst.subarray(0, n)], model.read(offset, len), where(op, i));
    } else if (pick < 0.92) {
      op = `enqueueExact ${len}`;
      const src = randomBytes(rand, len);
      const fits = len <= model.free;
      assert.equal(fifo.enqueueExact(src), fits, where(op, i));
      if (fits) model.enqueue(src);
    } else if (pick < 0.94) {
      op = `dequeueExact ${len}`;
      const dst = new Uint8Array(len);
      const enough = len <= model.used;
      const expected = enough ? model.read(0, len) : [];
      if (enough) model.drop(len);
      assert.equal(fifo.dequeueExact(dst), enough, where(op, i));
      if (enough) assert.deepEqual([...dst], expected, where(op, i));
    } else if (pick < 0.955) {
      op = `dequeueDrop ${len}`;
      assert.equal(fifo.dequeueDrop(len), model.drop(len), where(op, i));
    } else if (pick < 0.965) {
      op = `writeSegments ${len}, enqueueNocopy`;
      const views = fifo.writeSegments(len);
      const total = views.reduce((n, v) => n + v.length, 0);
      assert.equal(total, Math.min(len, model.free), where(op, i));
      const src = randomBytes(rand, total);
      let at = 0;
      for (const v of views) {
        v.set(src.subarray(at, at + v.length));
        at += v.length;
      }
      assert.equal(fifo.enqueueNocopy(total), model.enqueue(src), where(op, i));
    } else if (pick < 0.975) {
      op = "readSegments";
      const got = fifo.readSegments().flatMap((v) => [...v]);
      assert.deepEqual(got, model.read(0, model.used), where(op, i));
    } else if (chunked && pick < 0.99) {
      const size = 1 + Math.floor(rand() * fifo.maxSize);
      op = `setSize ${size}`;
      fifo.setSize(size);
      model.cap = size;
    } else {
      op = "dequeueDropAll";
      assert.equal(fifo.dequeueDropAll(), model.drop(model.used), where(op, i));
    }
    check(fifo, model, where(op, i));
    if (chunked) {
      // Memory follows the fill level: chunks for the bytes held (out-of-order ones too), plus
      // at most one kept at the head, one ahead of the tail, and the spare chunks.
      const reach = model.used + Math.max(0, ...fifo.oooSegments().map((s) => s.offset + s.length));
      assert.ok(
        fifo.chunkCount <= Math.ceil(reach / 4096) + 2 + fifo.spareChunks,
        `${where(op, i)}: ${fifo.chunkCount} chunks for ${reach} bytes`,
      );
    }
  }
  if (chunked) {
    fifo.dequeueDropAll();
    assert.equal(fifo.waitForDataSync({ timeoutMs: 0 }), false); // the reader waits: spares go back
    if (fifo.oooSegments().length === 0) {
      assert.ok(fifo.chunkCount <= 1, `seed ${seed}: drained, ${fifo.chunkCount} chunks`);
    }
    assert.deepEqual(made.audit(), [], `seed ${seed}: every chunk in one table word or on its freelist`);
  }
}

function check(fifo: Fifo, model: Model, where: string): void {
  assert.equal(fifo.maxDequeue, model.used, `${where}: maxDequeue`);
  assert.equal(fifo.maxEnqueue, model.free, `${where}: maxEnqueue`);
  assert.deepEqual(fifo.oooSegments(), model.segments(), `${where}: out-of-order ranges`);
}

test("random operations agree with a plain model, 400 seeds x 300 steps", () => {
  for (let seed = SEED + 1; seed <= SEED + 400; seed++) runSeed(seed, 300);
});

test("a chunked fifo (4 KiB chunks, up to 6 slots, setSize) agrees with the same model, 100 seeds x 200 steps", () => {
  for (let seed = SEED + 1; seed <= SEED + 100; seed++) runSeed(seed, 200, true);
});
