// A peer for the allocator tests; runs under Deno or Bun.
//   churn TYPE NAME ITERATIONS SEED   allocate and free fifos of mixed sizes in a loop (ITERATIONS 0:
//                                     forever), each filled with its own pattern and checked before
//                                     it is freed; prints RUNNING after a while, then DONE {...}
//   chunk-churn TYPE NAME SEED        forever: chunked fifos of its own filled and drained in random
//                                     steps (their chunks taken and given back), every byte checked;
//                                     prints RUNNING after a while
//   slave TYPE NAME RECORDS          attach by name, find the fifo through fifos(), check RECORDS records
//   kinds-churn TYPE NAME             forever: fifos, message queues and message rings allocated and
//                                     freed at once; prints RUNNING after a while
import { type Fifo, SegmentMain } from "../../mod.ts";
import { chunkChurn, churn } from "./churn.ts";
import { exitIfOrphaned } from "./orphan.ts"; // ends with the test process that started it

const [mode, type, name, count, seed] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: type as "shm", name });
if (mode === "churn") {
  console.log(`DONE ${JSON.stringify(churn(segment, Number(count), Number(seed), () => console.log("RUNNING")))}`);
} else if (mode === "chunk-churn") {
  chunkChurn(segment, 0, Number(count), () => console.log("RUNNING"), true);
} else if (mode === "kinds-churn") {
  // Each round holds one of each kind for a moment, so that another process's listing finds
  // them live and sees them freed under it.
  for (let round = 0;; round++) {
    if (round === 200) console.log("RUNNING");
    if ((round & 1023) === 0) exitIfOrphaned();
    const fifo = segment.allocFifo(64 + (round % 4096), "rx");
    const queue = segment.allocMessageQueue({ slots: 4, slotSize: 64 });
    const ring = segment.allocMessageRing(4096);
    if (fifo) segment.freeFifo(fifo);
    if (queue) segment.freeMessageQueue(queue);
    if (ring) segment.freeMessageRing(ring);
  }
} else if (mode === "slave") {
  const fifos = segment.fifos();
  const fifo: Fifo | undefined = fifos.find((f) => f.tag === 0x5a5a);
  if (!fifo) throw new Error(`no fifo tagged 0x5a5a among ${fifos.length}`);
  const record = new Uint8Array(32);
  const view = new DataView(record.buffer);
  let good = 0;
  for (let i = 0; i < Number(count); i++) {
    let have = 0;
    while (have < record.length) have += fifo.dequeue(record.subarray(have));
    const text = new TextDecoder().decode(record.subarray(8, 8 + view.getUint32(4, true)));
    if (view.getUint32(0, true) === i && text === `record ${i}`) good++;
  }
  console.log(`DONE ${JSON.stringify({ good, fifos: fifos.length, list: fifo.list, left: fifo.maxDequeue })}`);
}
