// A peer for the message ring tests; runs under Deno, Bun or Node.
//   produce NAME OFFSET COUNT SEED   COUNT records of random lengths and types (ring_sides.ts), then close
//   consume NAME OFFSET COUNT        polls until closed, checking every byte
//   stream-produce NAME OFFSET COUNT END   COUNT records (recordShape) through ring.writable, printing
//                                    WROTE n every 1000 and at the end; then END: "close" closes the
//                                    stream, "abort" aborts it, "hang" leaves it open and lives on
//   stream-consume NAME OFFSET COUNT reads COUNT records from ring.readable, prints READ COUNT, then reads no more
// Prints DONE {...}.
import { SegmentMain } from "../../mod.ts";
import { consume, produce } from "./ring_sides.ts";
import { fillRecord, recordShape } from "./ring_records.ts";

const [mode, name, offset, count, seed] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const ring = sm.attach({ type: "shm", name }).messageRingAt(Number(offset));
let result: unknown;
if (mode === "produce") result = await produce(ring, Number(count), Number(seed));
else if (mode === "consume") result = await consume(ring);
else if (mode === "stream-produce") {
  const writer = ring.writable.getWriter();
  for (let i = 0; i < Number(count); i++) {
    const { length, type } = recordShape(i, ring.maxMessage);
    const data = new Uint8Array(length);
    fillRecord(data, 0, length, i);
    await writer.write(type === 0 ? data : { type, data }); // both kinds of chunk
    if (i % 1000 === 999 || i === Number(count) - 1) console.log(`WROTE ${i + 1}`);
  }
  if (seed === "abort") await writer.abort(new Error("given up"));
  else if (seed === "hang") await new Promise(() => setInterval(() => {}, 1000)); // until killed
  else await writer.close();
  result = { wrote: Number(count) };
} else if (mode === "stream-consume") {
  const reader = ring.readable.getReader();
  for (let i = 0; i < Number(count); i++) await reader.read();
  console.log(`READ ${count}`);
  await new Promise(() => setInterval(() => {}, 1000)); // alive, reading no more, until killed
} else throw new Error(`unknown mode ${mode}`);
console.log(`DONE ${JSON.stringify(result)}`);
