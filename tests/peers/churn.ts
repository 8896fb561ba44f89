// Allocate, fill, check and free fifos in a loop: used by the allocator stress and kill tests.
import type { Fifo, Segment } from "../../mod.ts";
import { xorshift } from "../helpers.ts";
import { exitIfOrphaned } from "./orphan.ts";

/** The pattern byte of a fifo owned by `owner`, at position i. */
function fill(owner: number, i: number): number {
  return Math.imul(owner ^ i, 0x9e3779b1) >>> 24;
}

/**
 * Runs `iterations` steps (0: forever). Each step either allocates a fifo of a random size,
 * tags it with a unique owner id and fills it with that owner's pattern, or frees a held one
 * after checking that its tag and every byte are still its own. Returns the counts.
 */
export function churn(segment: Segment, iterations: number, seed: number, started?: () => void) {
  const rand = xorshift(seed);
  const pid = (globalThis as { process?: { pid: number } }).process?.pid ?? 0;
  const held: { fifo: Fifo; owner: number }[] = [];
  const buf = new Uint8Array(70_000);
  let allocs = 0;
  let frees = 0;
  let nulls = 0;
  let corrupt = 0;
  let next = 1;
  const check = (fifo: Fifo, owner: number) => {
    if (fifo.tag !== owner) return false;
    const n = fifo.peek(0, buf.subarray(0, fifo.size));
    if (n !== fifo.size) return false;
    for (let i = 0; i < n; i++) if (buf[i] !== fill(owner, i)) return false;
    return true;
  };
  for (let step = 0; iterations === 0 || step < iterations; step++) {
    if ((step & 1023) === 0) exitIfOrphaned();
    if (step === 200) started?.();
    if (held.length < 8 && (held.length === 0 || rand() < 0.55)) {
      const size = rand() < 0.5 ? 1 + Math.floor(rand() * 4096) : 1 + Math.floor(rand() * 66_000);
      const fifo = segment.allocFifo(size, rand() < 0.5 ? "rx" : "tx");
      if (!fifo) {
        nulls++;
        continue;
      }
      const owner = ((pid & 0xffff) << 16 | (next++ & 0xffff)) >>> 0;
      fifo.tag = owner;
      const data = buf.subarray(0, size);
      for (let i = 0; i < size; i++) data[i] = fill(owner, i);
      if (fifo.enqueue(data) !== size) corrupt++;
      held.push({ fifo, owner });
      allocs++;
    } else {
      const { fifo, owner } = held.splice(Math.floor(rand() * held.length), 1)[0];
      if (!check(fifo, owner)) corrupt++;
      segment.freeFifo(fifo);
      frees++;
    }
  }
  for (const { fifo, owner } of held.splice(0)) {
    if (!check(fifo, owner)) corrupt++;
    segment.freeFifo(fifo);
    frees++;
  }
  return { allocs, frees, nulls, corrupt };
}

/**
 * Runs `iterations` steps (0: forever) over three chunked fifos of this process: each step
 * writes or reads a random amount of one of them (so chunks are taken and given back all the
 * time), every byte checked against its position (`light`: whole chunks, unchecked, so that
 * most of the time is spent in the allocator). Returns the counts; `bad` must be 0.
 */
export function chunkChurn(segment: Segment, iterations: number, seed: number, started?: () => void, light = false) {
  const rand = xorshift(seed);
  // No spare chunks (every chunk through the allocator), one, and the default (chunks handed
  // over in place): a kill lands in the allocator's journal or in a lock-free hand-over.
  const fifos = [0, 1, undefined].map((spareChunks) =>
    segment.allocFifo(48 * 1024, "none", { chunked: true, chunkSize: 4096, spareChunks })
  );
  const held = fifos.filter((f): f is Fifo => f !== null);
  const written = held.map(() => 0);
  const read = held.map(() => 0);
  const buf = new Uint8Array(20_000);
  let bad = 0;
  for (let step = 0; iterations === 0 || step < iterations; step++) {
    if ((step & 1023) === 0) exitIfOrphaned();
    if (step === 200) started?.();
    const i = Math.floor(rand() * held.length);
    const fifo = held[i];
    const n = 1 + Math.floor(rand() * buf.length);
    if (light) {
      // Whole chunks, unchecked: nearly all the time goes to taking and giving back chunks, so a
      // kill lands inside the allocator often.
      if (rand() < 0.5) fifo.enqueue(buf.subarray(0, 4096));
      else fifo.dequeue(buf.subarray(0, 4096));
      continue;
    }
    if (rand() < 0.5) {
      const src = buf.subarray(0, n);
      for (let k = 0; k < n; k++) src[k] = fill(i, written[i] + k);
      written[i] += fifo.enqueue(src);
    } else {
      const got = fifo.dequeue(buf.subarray(0, n));
      for (let k = 0; k < got; k++) if (buf[k] !== fill(i, read[i] + k)) bad++;
      read[i] += got;
    }
  }
  for (const fifo of held) segment.freeFifo(fifo);
  return { bad, written: written.reduce((a, b) => a + b, 0), read: read.reduce((a, b) => a + b, 0) };
}
