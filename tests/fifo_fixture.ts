// A fifo in a process-private segment, for tests that need no second process.
import { type Fifo, type Segment, SegmentMain } from "../mod.ts";

/** A fresh fifo of exactly `capacity` bytes, and its segment; dispose the main when done. */
export function privateFifo(capacity: number): { sm: SegmentMain; segment: Segment; fifo: Fifo } {
  const sm = new SegmentMain();
  const chunk = 256 + 4096 * 2 ** Math.max(0, Math.ceil(Math.log2(capacity / 4096)));
  const segment = sm.create({ type: "private", name: "fixture", size: 4096 + chunk + 65536 });
  const fifo = segment.allocFifo(capacity, "rx");
  if (!fifo) throw new Error("fixture segment too small");
  return { sm, segment, fifo };
}

/** Bytes 0..n-1 plus `start`, as a Uint8Array. */
export function seq(n: number, start = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}
