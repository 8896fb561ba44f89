// One side of the connection benchmark, in its own process (Deno or Bun).
//   serve NAME               listen; per connection: echo (round trips) or count (a stream);
//                            runs until killed
//   connects NAME N          N connects, each closed at once: the time of one
//   rtt NAME ROUNDS          64 B round trips with send/receive, both sides asleep in between
//   stream NAME BYTES SIZE [count|count-byob]
//                            BYTES through conn.writable in SIZE writes; the server counts them,
//                            reading conn.readable with a default reader (count) or a BYOB one
//   uds-count PATH           a node:net server that counts a stream's bytes
//   uds-stream PATH BYTES SIZE  writes BYTES to it in SIZE writes
// Prints READY when listening and RESULT {json} at the end.
import { SegmentMain } from "../mod.ts";
import { udsEcho, udsPing } from "./kernel_cases.ts";

const [role, name, a, b, c] = process.argv.slice(2);
const say = (line: string) => console.log(line);
let result: unknown = {};
using sm = new SegmentMain();

if (role === "serve") {
  using listener = await sm.listen(name, { fifoSize: 1 << 20 });
  say("READY");
  for await (const conn of listener) {
    (async () => {
      // The first message says what the client measures: "echo", "count" or "count-byob".
      const mode = new TextDecoder().decode((await conn.receive()) ?? new Uint8Array());
      if (mode === "echo") {
        for await (const message of conn.messages()) await conn.send(message);
      } else if (mode === "count" || mode === "count-byob") {
        let bytes = 0;
        if (mode === "count") { for await (const chunk of conn.readable) bytes += chunk.length; }
        else {
          const reader = conn.readable.getReader({ mode: "byob" });
          let buffer = new Uint8Array(1 << 20);
          for (;;) {
            const { value, done } = await reader.read(buffer);
            if (done) break;
            bytes += value.length;
            buffer = new Uint8Array(value.buffer); // the same memory, back to the reader
          }
        }
        await conn.send(new TextEncoder().encode(String(bytes)));
      }
      conn.close();
    })().catch(() => {});
  }
} else if (role === "connects") {
  const n = Number(a);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const conn = await sm.connect(name);
    times.push(performance.now() - t);
    conn.close();
  }
  times.sort((x, y) => x - y);
  result = { p50Us: times[n >> 1] * 1000, meanUs: (times.reduce((x, y) => x + y, 0) / n) * 1000 };
} else if (role === "rtt") {
  const conn = await sm.connect(name);
  await conn.send(new TextEncoder().encode("echo"));
  const rounds = Number(a);
  const msg = new Uint8Array(64);
  const samples = new Float64Array(rounds);
  for (let i = -100; i < rounds; i++) {
    const t = performance.now();
    msg[0] = i & 0xff;
    await conn.send(msg);
    const back = await conn.receive();
    if (!back || back[0] !== (i & 0xff)) throw new Error(`round trip ${i} came back wrong`);
    if (i >= 0) samples[i] = (performance.now() - t) * 1e6;
  }
  conn.close();
  samples.sort();
  result = {
    meanNs: samples.reduce((x, y) => x + y, 0) / rounds,
    p50Ns: samples[rounds >> 1],
    p99Ns: samples[Math.floor(rounds * 0.99)],
  };
} else if (role === "stream") {
  const conn = await sm.connect(name);
  await conn.send(new TextEncoder().encode(c ?? "count"));
  const total = Number(a);
  const size = Number(b);
  const chunk = new Uint8Array(size).fill(0x5a);
  const writer = conn.writable.getWriter();
  const t = performance.now();
  for (let sent = 0; sent < total; sent += size) await writer.write(chunk);
  await writer.close();
  const counted = Number(new TextDecoder().decode((await conn.receive())!));
  const seconds = (performance.now() - t) / 1000;
  if (counted !== total) throw new Error(`the server counted ${counted} of ${total} bytes`);
  conn.close();
  result = { gbps: total / seconds / 1e9 };
} else if (role === "uds-echo") {
  await udsEcho(name, Number(a), () => say("READY"));
} else if (role === "uds-ping") {
  result = await udsPing(name, Number(a));
} else if (role === "uds-count") {
  const net = await import("node:net");
  await new Promise<void>((resolve) => {
    const server = net.createServer((socket) => {
      let bytes = 0;
      socket.on("data", (d: Uint8Array) => (bytes += d.length));
      socket.on("end", () => {
        socket.end(String(bytes));
        server.close();
        resolve();
      });
    });
    server.listen({ path: name }, () => say("READY"));
  });
} else if (role === "uds-stream") {
  const net = await import("node:net");
  const total = Number(a);
  const size = Number(b);
  const chunk = new Uint8Array(size).fill(0x5a);
  const socket = net.connect({ path: name });
  await new Promise((r) => socket.once("connect", r));
  const t = performance.now();
  for (let sent = 0; sent < total; sent += size) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
  const reply = await new Promise<string>((r) => {
    let text = "";
    socket.on("data", (d: Uint8Array) => (text += new TextDecoder().decode(d)));
    socket.on("end", () => r(text));
  });
  const seconds = (performance.now() - t) / 1000;
  if (Number(reply) !== total) throw new Error(`the server counted ${reply} of ${total} bytes`);
  result = { gbps: total / seconds / 1e9 };
} else {
  throw new Error(`unknown role ${role}`);
}
say(`RESULT ${JSON.stringify(result)}`);
