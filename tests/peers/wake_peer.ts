// A peer for the event-loop wake-up tests; runs under Deno, Bun or Node. WHERE is an shm name.
//   one-each WHERE OFFSETS                 write each fifo's index (u32) into it, once
//   many-bursts WHERE OFFSETS TOTAL SEED   TOTAL bytes in random bursts to random fifos, then close all
//   produce-then-hang WHERE OFFSET BYTES   write BYTES patterned bytes, print WROTE, then sleep forever
//   consume-then-hang WHERE OFFSET         become the consumer (one wait), print READY, then sleep forever
//   abort-after WHERE OFFSET BYTES         write BYTES through fifo.writable, then abort it
//   wait-once WHERE OFFSET                 one waitForData without a timeout, nothing else pending
//   wake-rounds WHERE OFFSET ROUNDS        ROUNDS times: print WAITING i, wait, read one byte, print GOT i
// OFFSETS is a comma-separated list. Prints DONE {...} (the hanging modes are killed instead).
import { SegmentMain } from "../../mod.ts";
import { patternByte, xorshift } from "../helpers.ts";
import "./orphan.ts"; // ends with the test process that started it

const [mode, where, offsets, a, b] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name: where });
const fifos = offsets.split(",").map((o) => segment.fifoAt(Number(o)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const forever = () => new Promise(() => setInterval(() => {}, 60_000));
let result: unknown = {};

if (mode === "one-each") {
  const word = new Uint8Array(4);
  fifos.forEach((fifo, i) => {
    new DataView(word.buffer).setUint32(0, i, true);
    if (!fifo.enqueueExact(word)) throw new Error(`fifo ${i} is full`);
  });
  result = { wrote: fifos.length };
} else if (mode === "many-bursts") {
  const rand = xorshift(Number(b));
  const total = Number(a);
  const sent = new Array<number>(fifos.length).fill(0);
  const buf = new Uint8Array(2048);
  let left = total;
  while (left > 0) {
    const burst = 1 + Math.floor(rand() * 50);
    for (let k = 0; k < burst && left > 0; k++) {
      const i = Math.floor(rand() * fifos.length);
      const n = Math.min(1 + Math.floor(rand() * buf.length), left);
      for (let j = 0; j < n; j++) buf[j] = patternByte(sent[i] + j, i);
      let done = 0;
      while (done < n) {
        done += fifos[i].enqueue(buf.subarray(done, n));
        if (done < n) await fifos[i].waitForSpace(1, { timeoutMs: 20_000 });
      }
      sent[i] += n;
      left -= n;
    }
    if (rand() < 0.3) await sleep(Math.floor(rand() * 4)); // a gap: the reader falls asleep
  }
  for (const fifo of fifos) fifo.close();
  result = { sent };
} else if (mode === "produce-then-hang") {
  const n = Number(a);
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = patternByte(i, 1);
  if (fifos[0].enqueue(bytes) !== n) throw new Error("the fifo is too small");
  console.log("WROTE");
  await forever();
} else if (mode === "consume-then-hang") {
  await fifos[0].waitForData({ timeoutMs: 1 });
  console.log("READY");
  await forever();
} else if (mode === "wake-rounds") {
  const byte = new Uint8Array(1);
  for (let i = 0; i < Number(a); i++) {
    console.log(`WAITING ${i}`);
    while (!fifos[0].dequeueExact(byte)) await fifos[0].waitForData();
    console.log(`GOT ${i}`);
  }
  result = { rounds: Number(a) };
} else if (mode === "wait-once") {
  console.log("WAITING");
  result = { woke: await fifos[0].waitForData(), at: performance.now() };
} else if (mode === "abort-after") {
  const writer = fifos[0].writable.getWriter();
  await writer.write(new Uint8Array(Number(a)).fill(5));
  await writer.abort(new Error("the producer gave up"));
  result = { aborted: true };
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(`DONE ${JSON.stringify(result)}`);
