// One side of a cross-process benchmark case, in its own process (Deno or Bun).
//   fifo-produce|fifo-consume NAME OFFSET SIZE COUNT [WARM] (the consumer times from WARM bytes on)
//   msg-produce|msg-consume   NAME OFFSET PAYLOAD COUNT
//   ping|ping-sleep NAME OUT BACK ROUNDS    echo|echo-sleep NAME IN OUT ROUNDS
//   sleep-produce|sleep-consume NAME OFFSET SIZE COUNT (the stream, sleeping in the waits)
//   ring-produce|ring-consume NAME GO RING COUNT PAYLOAD   ring-ping|ring-echo NAME GO A COUNT B
//   floor-ping|floor-echo NAME GO RING COUNT (the C ring's exchange in plain JavaScript, in RING's area)
//   idle NAME OFFSET FIRST_MS MS (CPU time per second while asleep MS on an empty fifo, after FIRST_MS)
//   uds-echo PATH ROUNDS    uds-ping PATH ROUNDS (64 B round trips over node:net)
//   server-set|server-any|server-clients NAME GO RX TX ROUNDS (a server's loop over clients' fifos:
//     RX and TX comma-separated offsets; the server sleeps in a WaitSet or in waitAny)
//   uds-serve PATH ROUNDS    uds-clients PATH COUNT ROUNDS (its anchor: COUNT node:net connections)
//   socket-read PATH    socket-write PATH SIZE COUNT    pipe-read SIZE COUNT (starts pipe-write)
// Prints READY once attached (the orchestrator starts the other side then), and RESULT {json}.
import { fileURLToPath } from "node:url";
import { SegmentMain } from "../mod.ts";
import {
  clientsSleeping,
  echo,
  echoSleeping,
  floorEcho,
  floorPing,
  idleCpu,
  messagesConsume,
  messagesProduce,
  pingpong,
  pingpongSleeping,
  ringConsume,
  ringEcho,
  ringPingpong,
  ringProduce,
  serveSleeping,
  STREAM_READ,
  streamConsume,
  streamConsumeSleeping,
  streamProduce,
  streamProduceSleeping,
  WARMUP_ROUNDS,
} from "./fifo_cases.ts";
import {
  pipeRead,
  pipeWrite,
  socketRead,
  socketWrite,
  udsClients,
  udsEcho,
  udsPing,
  udsServe,
} from "./kernel_cases.ts";
import { sleepUntilStart, spinUntilStart } from "./start_flag.ts";

const [role, ...args] = process.argv.slice(2);
const say = (line: string) => console.log(line);
let result: unknown = {};

if (
  role.startsWith("fifo-") || role.startsWith("sleep-") || role.startsWith("msg-") || role.startsWith("ping") ||
  role.startsWith("ring-") || role.startsWith("floor-") ||
  role.startsWith("echo") || role === "idle"
) {
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  const segment = sm.attach({ type: "shm", name: args[0] });
  const a = segment.fifoAt(Number(args[1]));
  const n = Number(args[3]);
  const go = segment.fifoAt(Number(args[1])); // the orchestrator's start flag is a's tag
  say("READY");
  spinUntilStart(go);
  if (role === "fifo-produce") result = streamProduce(a, Number(args[2]), n);
  else if (role === "ring-produce") result = ringProduce(segment.messageRingAt(Number(args[2])), Number(args[4]), n);
  else if (role === "ring-consume") result = ringConsume(segment.messageRingAt(Number(args[2])), Number(args[4]), n);
  else if (role === "floor-ping" || role === "floor-echo") {
    // The record area of a ring nobody uses as one, 64-aligned: scratch memory for the floor.
    const ring = segment.messageRingAt(Number(args[2]));
    const at = (ring.offset + 1024 + 63) & ~63;
    if (role === "floor-ping") result = floorPing(ring.bytes, at, n);
    else floorEcho(ring.bytes, at, n);
  } else if (role === "ring-ping") {
    result = ringPingpong(segment.messageRingAt(Number(args[2])), segment.messageRingAt(Number(args[4])), n);
  } else if (role === "ring-echo") {
    ringEcho(segment.messageRingAt(Number(args[2])), segment.messageRingAt(Number(args[4])), n);
  } else if (role === "sleep-produce") result = await streamProduceSleeping(a, Number(args[2]), n);
  else if (role === "sleep-consume") result = await streamConsumeSleeping(a, Number(args[2]), n, STREAM_READ);
  else if (role === "fifo-consume") result = streamConsume(a, Number(args[2]), n, STREAM_READ, Number(args[4] ?? 0));
  else if (role === "msg-produce") result = messagesProduce(a, Number(args[2]), n);
  else if (role === "msg-consume") result = messagesConsume(a, Number(args[2]), n);
  else if (role === "ping") result = pingpong(a, segment.fifoAt(Number(args[2])), n);
  else if (role === "echo") echo(a, segment.fifoAt(Number(args[2])), n + WARMUP_ROUNDS + Math.floor(n / 10));
  else if (role === "ping-sleep") result = await pingpongSleeping(a, segment.fifoAt(Number(args[2])), n);
  else if (role === "echo-sleep") await echoSleeping(a, segment.fifoAt(Number(args[2])), n);
  else if (role === "idle") result = await idleCpu(a, Number(args[2]), Number(args[3]));
} else if (role.startsWith("server-")) {
  // server-set|server-any|server-clients NAME GO RX_OFFSETS TX_OFFSETS ROUNDS
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  const segment = sm.attach({ type: "shm", name: args[0] });
  const go = segment.fifoAt(Number(args[1]));
  const rx = args[2].split(",").map((o) => segment.fifoAt(Number(o)));
  const tx = args[3].split(",").map((o) => segment.fifoAt(Number(o)));
  const n = Number(args[4]);
  say("READY");
  await sleepUntilStart(go);
  if (role === "server-clients") result = await clientsSleeping(rx, tx, n);
  else await serveSleeping(rx, tx, n, role === "server-set" ? "set" : "any");
} else if (role === "uds-serve") {
  await udsServe(args[0], Number(args[1]), () => say("READY"));
} else if (role === "uds-clients") {
  say("READY");
  result = await udsClients(args[0], Number(args[1]), Number(args[2]));
} else if (role === "uds-echo") {
  await udsEcho(args[0], Number(args[1]), () => say("READY"));
} else if (role === "uds-ping") {
  say("READY");
  result = await udsPing(args[0], Number(args[1]));
} else if (role === "socket-read") {
  result = await socketRead(args[0], () => say("READY"));
} else if (role === "socket-write") {
  say("READY");
  await socketWrite(args[0], Number(args[1]), Number(args[2]));
} else if (role === "pipe-read") {
  const self = fileURLToPath(import.meta.url); // decoded: a path may hold spaces
  const run = "Bun" in globalThis
    ? [process.execPath, self]
    : "Deno" in globalThis
    ? [Deno.execPath(), "run", "-A", "--quiet", self]
    : [process.execPath, "--no-warnings", self];
  say("READY");
  result = await pipeRead([...run, "pipe-write", args[0], args[1]]);
} else if (role === "pipe-write") {
  await pipeWrite(Number(args[0]), Number(args[1]));
} else {
  throw new Error(`unknown role ${role}`);
}
if (role !== "pipe-write") say(`RESULT ${JSON.stringify(result)}`);
