// One side of a message queue benchmark case, in its own process (Deno, Bun or Node).
//   mq-produce NAME QUEUE GO ID COUNT poll|sleep    64-byte messages [id u32][index u32][...]; the
//                                                   longest a message waited for room
//   mq-consume NAME QUEUE GO TOTAL poll|sleep       receives TOTAL, checks each producer's order
//   mq-ping NAME QUEUE GO COUNT BACK                sends; asleep until the echo returns on BACK; back to back
//   mq-echo NAME QUEUE GO COUNT BACK                asleep until a message comes, sends it back on BACK
// Prints READY once attached, waits for the go fifo's tag, and prints RESULT {json} at the end.
import { SegmentMain } from "../mod.ts";
import { sleepUntilStart } from "./start_flag.ts";

const [role, name, queueText, goText, ...rest] = process.argv.slice(2);
using sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name });
const queue = segment.messageQueueAt(Number(queueText));
const go = segment.fifoAt(Number(goText));
console.log("READY");
await sleepUntilStart(go);
let result: unknown = {};

if (role === "mq-produce") {
  const [id, count, mode] = [Number(rest[0]), Number(rest[1]), rest[2]];
  const message = new Uint8Array(64);
  const view = new DataView(message.buffer);
  view.setUint32(0, id, true);
  // The longest a message waited for room (from the first try to its send).
  let longestMs = 0;
  for (let i = 0; i < count; i++) {
    view.setUint32(4, i, true);
    if (queue.trySend(message)) continue;
    const t0 = performance.now();
    if (mode === "poll") { while (!queue.trySend(message)); }
    else await queue.send(message);
    longestMs = Math.max(longestMs, performance.now() - t0);
  }
  result = { longestMs };
} else if (role === "mq-consume") {
  const [total, mode] = [Number(rest[0]), rest[1]];
  const next = new Map<number, number>();
  let got = 0;
  let t0 = 0;
  const take = (bytes: Uint8Array) => {
    const id = bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24;
    const index = bytes[4] | bytes[5] << 8 | bytes[6] << 16 | bytes[7] << 24;
    if (index !== (next.get(id) ?? 0)) {
      throw new Error(`producer ${id}: message ${index} out of order (expected ${next.get(id) ?? 0})`);
    }
    next.set(id, index + 1);
    got++;
  };
  const dst = new Uint8Array(64);
  while (got < total) {
    const n = queue.receiveBatch(take, 256);
    if (n > 0 && t0 === 0) t0 = performance.now();
    if (n === 0 && mode === "sleep") {
      if (await queue.receive(dst, { timeoutMs: 1000 }) >= 0) {
        if (t0 === 0) t0 = performance.now();
        take(dst);
      }
    }
  }
  result = { seconds: (performance.now() - t0) / 1000, messages: got };
} else if (role === "mq-ping") {
  // Like the fifo's sleeping round trip (bench/fifo_cases.ts): back to back, each side asleep
  // in receive until the other's message arrives; 100 rounds of warm-up first.
  const back = segment.messageQueueAt(Number(rest[1]));
  const message = new Uint8Array(64);
  const reply = new Uint8Array(64);
  const rounds = Number(rest[0]);
  const times: number[] = [];
  for (let i = -100; i < rounds; i++) {
    const t0 = performance.now();
    queue.trySend(message);
    if ((await back.receive(reply, { timeoutMs: 5000 })) < 0) throw new Error("no echo in 5 s");
    if (i >= 0) times.push((performance.now() - t0) * 1000);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  result = { p50Us: at(0.5), p99Us: at(0.99) };
} else if (role === "mq-echo") {
  const back = segment.messageQueueAt(Number(rest[1]));
  const dst = new Uint8Array(64);
  for (let i = -100; i < Number(rest[0]); i++) {
    const n = await queue.receive(dst, { timeoutMs: 5000 });
    if (n < 0) throw new Error("no message in 5 s");
    back.trySend(dst.subarray(0, n));
  }
} else {
  throw new Error(`unknown role ${role}`);
}
console.log(`RESULT ${JSON.stringify(result)}`);
