// One side of the kill matrix's stream, restarted after every SIGKILL. It resumes where the
// fifo's own counter says (a fifo of capacity C counts modulo a multiple of C, and the stream
// stays below that period, so the counter is the stream position), writes or reads sizes drawn
// from SEED (mostly 1-3 bytes, so that kills land inside operations), and checks every byte it
// reads against the pattern of its position.
//   produce NAME OFFSET SEED    prints READY, then writes until killed
//   consume NAME OFFSET SEED    prints READY, then reads until killed; prints BAD and exits 1 on a wrong byte
import { SegmentError, SegmentMain } from "../../mod.ts";
import { FF_HEAD, FF_TAIL } from "../../src/layout.ts";
import { STREAM_PERIOD, streamTable, xorshift } from "../helpers.ts";
import "./orphan.ts"; // ends with the test process that started it

const [mode, name, offsetText, seedText] = process.argv.slice(2);
const sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name });
const fifo = segment.fifoAt(Number(offsetText));
const table = streamTable();
const rand = xorshift(Number(seedText));
const size = () => (rand() < 0.8 ? 1 + Math.floor(rand() * 3) : 1 + Math.floor(rand() * 1500));
const counter = (field: number) => Atomics.load(segment.u32, (fifo.offset + field) >>> 2);

// Preallocated arrays for the small sizes: the loops allocate nothing, so that most of their
// time (and so most kills) falls inside the library's calls.
const small = [new Uint8Array(0), new Uint8Array(1), new Uint8Array(2), new Uint8Array(3)];
const big = new Uint8Array(1500);

/**
 * The other side is killed and restarted over and over: a wait that ends with "peer-gone" (the
 * old process died, the new one has not shown up yet) is the test's normal course; pause, go on.
 */
async function survive(wait: Promise<boolean>): Promise<void> {
  try {
    await wait;
  } catch (error) {
    if (!(error instanceof SegmentError) || error.code !== "peer-gone") throw error;
    await new Promise((r) => setTimeout(r, 2));
  }
}

if (mode === "produce") {
  let position = counter(FF_TAIL);
  console.log(`READY ${position}`);
  for (;;) {
    const n = size();
    const chunk = n <= 3 ? small[n] : big.subarray(0, n);
    for (let i = 0; i < n; i++) chunk[i] = table[(position + i) % STREAM_PERIOD];
    let wrote = fifo.enqueue(chunk);
    position += wrote;
    // Finish a partial write before drawing the next size (the bytes are already chosen).
    while (wrote < n) {
      await survive(fifo.waitForSpace(1, { timeoutMs: 200 }));
      const part = fifo.enqueue(chunk.subarray(wrote));
      wrote += part;
      position += part;
    }
  }
} else if (mode === "consume") {
  let position = counter(FF_HEAD);
  console.log(`READY ${position}`);
  for (;;) {
    const n = size();
    const buf = n <= 3 ? small[n] : big.subarray(0, n);
    const got = fifo.dequeue(buf);
    for (let i = 0; i < got; i++) {
      const expected = table[(position + i) % STREAM_PERIOD];
      if (buf[i] !== expected) {
        console.log(`BAD at ${position + i}: ${buf[i]} instead of ${expected}`);
        process.exit(1);
      }
    }
    position += got;
    if (got === 0) await survive(fifo.waitForData({ timeoutMs: 200 }));
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
