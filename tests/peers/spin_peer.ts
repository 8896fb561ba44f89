// Polling round trips for the spinning-wait test; runs under Deno, Bun or Node. WHERE is an shm name.
//   ping WHERE TX RX ROUNDS   ROUNDS times: 64 B out through TX, then a spinning waitForData on RX
//                             for the echo; prints DONE {"ms": time of all rounds}
//   echo WHERE RX TX ROUNDS   ROUNDS times: a spinning wait of a WaitSet holding RX, then the
//                             64 B back through TX; prints DONE {}
// Every wait spins up to a second before it would park, as polling callers ask.
import { SegmentMain, WaitSet } from "../../mod.ts";
import "./orphan.ts"; // ends with the test process that started it

const [mode, where, first, second, rounds] = process.argv.slice(2);
const SPIN = { spinMicros: 1_000_000, timeoutMs: 60_000 };
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name: where });
const message = new Uint8Array(64);
const result: { ms?: number } = {};

if (mode === "ping") {
  const tx = segment.fifoAt(Number(first));
  const rx = segment.fifoAt(Number(second));
  const start = performance.now();
  for (let r = 0; r < Number(rounds); r++) {
    message[0] = r & 0xff;
    if (!tx.enqueueExact(message)) throw new Error(`round ${r}: no room`);
    while (!rx.dequeueExact(message)) {
      if (rx.isClosed || !await rx.waitForData(SPIN)) throw new Error(`round ${r}: no echo`);
    }
    if (message[0] !== (r & 0xff)) throw new Error(`round ${r}: echo of round ${message[0]}`);
  }
  result.ms = performance.now() - start;
} else if (mode === "echo") {
  const rx = segment.fifoAt(Number(first));
  const tx = segment.fifoAt(Number(second));
  using set = new WaitSet([rx]);
  for (let r = 0; r < Number(rounds); r++) {
    while (!rx.dequeueExact(message)) {
      if (rx.isClosed || (await set.wait(SPIN)).length === 0) throw new Error(`round ${r}: no ping`);
    }
    if (!tx.enqueueExact(message)) throw new Error(`round ${r}: no room`);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(`DONE ${JSON.stringify(result)}`);
