// A peer for the message ring tests; runs under Deno, Bun or Node.
//   produce NAME OFFSET COUNT SEED   COUNT records of random lengths and types (ring_sides.ts), then close
//   consume NAME OFFSET COUNT        polls until closed, checking every byte
// Prints DONE {...}.
import { SegmentMain } from "../../mod.ts";
import { consume, produce } from "./ring_sides.ts";

const [mode, name, offset, count, seed] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const ring = sm.attach({ type: "shm", name }).messageRingAt(Number(offset));
const result = mode === "produce" ? await produce(ring, Number(count), Number(seed)) : await consume(ring);
console.log(`DONE ${JSON.stringify(result)}`);
