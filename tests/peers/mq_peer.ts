// A producer for the message queue tests; runs under Deno or Bun.
//   produce NAME OFFSET ID COUNT   sends COUNT messages of producer ID (sleeping while full, WAITING
//                                  printed before its first sleep), prints DONE
//   forever NAME OFFSET ID         prints READY, then sends until killed
//   late NAME OFFSET MS            sleeps MS, then sends one message
// Message of producer `id`, number `seq` (from 1): [id u32][seq u32][body], the body's length
// and bytes drawn from (id, seq), so that the consumer can check every byte.
import { SegmentMain } from "../../mod.ts";
import { messageOf } from "../mq_message.ts";
import "./orphan.ts"; // ends with the test process that started it

const [mode, name, offsetText, arg, countText] = process.argv.slice(2);
const sm = new SegmentMain({ timeoutSeconds: 10 });
const queue = sm.attach({ type: "shm", name }).messageQueueAt(Number(offsetText));
const buf = new Uint8Array(256);

if (mode === "produce") {
  const id = Number(arg);
  let said = false;
  for (let seq = 1; seq <= Number(countText); seq++) {
    const message = messageOf(buf, id, seq);
    if (queue.trySend(message)) continue;
    if (!said) console.log("WAITING"), said = true;
    await queue.send(message);
  }
  console.log("DONE");
} else if (mode === "forever") {
  const id = Number(arg);
  console.log("READY");
  for (let seq = 1;; seq++) {
    const message = messageOf(buf, id, seq);
    if (!queue.trySend(message)) await queue.send(message, { timeoutMs: 1000 });
  }
} else if (mode === "late") {
  await new Promise((r) => setTimeout(r, Number(arg)));
  queue.trySend(messageOf(buf, 99, 1));
  console.log("SENT");
} else {
  throw new Error(`unknown mode ${mode}`);
}
