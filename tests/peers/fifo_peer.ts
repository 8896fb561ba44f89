// A peer for the cross-process fifo tests; runs under Deno or Bun.
//   produce TYPE WHERE OFFSET TOTAL SEED   stream TOTAL patterned bytes into the fifo, write sizes varied
//   produce-ooo TYPE WHERE OFFSET TOTAL SEED  the same, every other write in two parts, the second first
//   consume TYPE WHERE OFFSET TOTAL SEED   read TOTAL bytes, read sizes varied, check every byte
//   events  TYPE WHERE OFFSET MSGS SEED    consumer side of the event protocol test (see fifo_stream_test.ts)
//   events-wrong-order ...                the same, checking for data before clearing the flag (the control)
// WHERE is the shm name, or PID:FD for a memfd. Prints one line: DONE {...}.
import { type Fifo, SegmentMain } from "../../mod.ts";
import { streamTable } from "../helpers.ts";
import { consumeEvents, consumeStream, produceStream } from "./stream.ts";

const [mode, type, where, offset, count, seed] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = type === "memfd"
  ? sm.attach({ type: "memfd", pid: Number(where.split(":")[0]), fd: Number(where.split(":")[1]) })
  : sm.attach({ type: "shm", name: where });
const fifo: Fifo = segment.fifoAt(Number(offset));
const peerAlive = () => sm.os.processAlive(process.ppid);
const table = streamTable();
let result: unknown;
if (mode === "produce") result = produceStream(fifo, Number(count), Number(seed), table, peerAlive);
else if (mode === "produce-ooo") result = produceStream(fifo, Number(count), Number(seed), table, peerAlive, true);
else if (mode === "consume") result = consumeStream(fifo, Number(count), Number(seed), table, peerAlive);
else if (mode === "events" || mode === "events-wrong-order") {
  const order = mode === "events" ? "unset-then-drain" : "drain-then-unset";
  result = consumeEvents(segment, fifo, Number(count), (us) => sm.os.sleepMicroseconds(us), peerAlive, order);
} else throw new Error(`unknown mode ${mode}`);
console.log(`DONE ${JSON.stringify(result)}`);
