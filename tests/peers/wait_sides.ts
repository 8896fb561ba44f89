// Both sides of the sleeping-consumer test, used by the test process and by wait_peer.ts.
import type { Fifo } from "../../mod.ts";
import { patternByte, xorshift } from "../helpers.ts";

/** Writes `total` patterned bytes in bursts of 1-40 writes with idle gaps of 0-4 ms. */
export async function produceBursts(fifo: Fifo, total: number, seed: number) {
  const rand = xorshift(seed);
  const buf = new Uint8Array(4096);
  let sent = 0;
  let bursts = 0;
  while (sent < total) {
    const writes = 1 + Math.floor(rand() * 40);
    for (let i = 0; i < writes && sent < total; i++) {
      const n = Math.min(1 + Math.floor(rand() * buf.length), total - sent);
      for (let k = 0; k < n; k++) buf[k] = patternByte(sent + k, 3);
      let done = 0;
      while (done < n) {
        done += fifo.enqueue(buf.subarray(done, n));
        if (done < n) await fifo.waitForSpace(1, { timeoutMs: 10_000 });
      }
      sent += n;
    }
    bursts++;
    const gap = Math.floor(rand() * 5);
    if (gap > 0) await new Promise((r) => setTimeout(r, gap)); // idle: the reader falls asleep
  }
  return { sent, bursts };
}

/**
 * Reads `total` bytes, sleeping in waitForData whenever the fifo is empty, and checks every
 * byte. Records the longest sleep: a lost wake-up would show as a sleep of a whole wait slice
 * (1 s), far beyond the producer's longest gap.
 */
export async function consumeSleeping(fifo: Fifo, total: number) {
  const buf = new Uint8Array(8192);
  let got = 0;
  let bad = 0;
  let sleeps = 0;
  let longestMs = 0;
  while (got < total) {
    const n = fifo.dequeue(buf);
    for (let i = 0; i < n; i++) if (buf[i] !== patternByte(got + i, 3)) bad++;
    got += n;
    if (n === 0) {
      const t = performance.now();
      const ok = await fifo.waitForData({ timeoutMs: 20_000 });
      longestMs = Math.max(longestMs, performance.now() - t);
      if (!ok) throw new Error(`no data for 20 s at byte ${got}`);
      sleeps++;
    }
  }
  return { got, bad, sleeps, longestMs };
}
