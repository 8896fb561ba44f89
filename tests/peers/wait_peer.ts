// A peer for the wait and stream tests; runs under Deno or Bun. WHERE is an shm name.
//   write-after WHERE OFFSET MS BYTES      sleep MS, then enqueue BYTES bytes
//   drain-after WHERE OFFSET MS            sleep MS, then drop everything readable
//   bursts WHERE OFFSET TOTAL SEED         write TOTAL bytes in bursts with idle gaps (0-4 ms)
//   consume-sleeping WHERE OFFSET TOTAL    read TOTAL bytes, sleeping in waitForData when empty
//   pipe-in WHERE OFFSET FILE              FILE's readable stream piped to fifo.writable
//   pipe-out WHERE OFFSET                  fifo.readable hashed (sha256) as it arrives
// Prints DONE {...}.
import { createHash } from "node:crypto";
import { SegmentMain } from "../../mod.ts";
import { consumeSleeping, produceBursts } from "./wait_sides.ts";

const [mode, where, offset, a, b] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name: where });
const fifo = segment.fifoAt(Number(offset));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let result: unknown = {};

if (mode === "write-after") {
  await sleep(Number(a));
  result = { wrote: fifo.enqueue(new Uint8Array(Number(b)).fill(7)) };
} else if (mode === "drain-after") {
  await sleep(Number(a));
  result = { dropped: fifo.dequeueDropAll() };
} else if (mode === "bursts") {
  result = await produceBursts(fifo, Number(a), Number(b));
} else if (mode === "consume-sleeping") {
  result = await consumeSleeping(fifo, Number(a));
} else if (mode === "pipe-in") {
  const g = globalThis as unknown as {
    Bun?: { file(path: string): { stream(): ReadableStream<Uint8Array> } };
  };
  const readable = g.Bun ? g.Bun.file(a).stream() : (await Deno.open(a)).readable;
  await readable.pipeTo(fifo.writable);
  result = { piped: true };
} else if (mode === "pipe-out") {
  const hash = createHash("sha256");
  let bytes = 0;
  await fifo.readable.pipeTo(
    new WritableStream({
      write(chunk: Uint8Array) {
        hash.update(chunk);
        bytes += chunk.length;
      },
    }),
  );
  result = { bytes, sha256: hash.digest("hex") };
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(`DONE ${JSON.stringify(result)}`);
