// A peer for the connection tests; runs under Deno, Bun or Node.
//   serve NAME COUNT            listen; echo every message of COUNT connections; print LISTENING
//   client NAME N [TIMEOUT_MS]  connect; send N numbered messages, check the echoes; close; DONE {...}
//   client-root NAME N          the same, accepting a listener of uid 0 (run as another uid)
//   client-hang NAME            connect, send one message, print CONNECTED, then sleep until killed
//   client-exit NAME N          connect, send N messages (1, 2, ... N, one byte each), exit without close
//   serve-hang NAME             listen, take one connection, print ACCEPTED, then sleep until killed
//   raw NAME WHAT               a raw SOCK_SEQPACKET client: WHAT is garbage, short, silent or big;
//                               prints SENT (and the listener's answer, if any) and sleeps until killed
//   stream NAME BYTES           connect; write BYTES patterned bytes through writable; close; DONE
//   forge NAME                  a raw client whose HELLO names the listener's own doorbell (found
//                               in /proc): answered, it prints FORGED, keeps the fds it was passed,
//                               never attaches the segment, and sleeps until killed
import { SegmentError, SegmentMain } from "../../mod.ts";
import { patternByte } from "../helpers.ts";
import { encodeHello } from "../../src/connection/handshake.ts";
import { bellName } from "../../src/layout.ts";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import "./orphan.ts"; // ends with the test process that started it

const [mode, name, a, b] = process.argv.slice(2);
using sm = new SegmentMain();
const forever = () => new Promise(() => setInterval(() => {}, 60_000));
const say = (line: string) => console.log(line);
const readlinkOr = (path: string) => {
  try {
    return readlinkSync(path);
  } catch {
    return ""; // closed meanwhile
  }
};
let result: unknown = {};

if (mode === "serve") {
  const listener = await sm.listen(name);
  say("LISTENING");
  let served = 0;
  const handlers: Promise<void>[] = [];
  for await (const conn of listener) {
    handlers.push((async () => {
      try {
        for await (const message of conn.messages()) await conn.send(message);
      } catch (error) {
        if (!(error instanceof SegmentError && error.code === "peer-gone")) throw error;
      }
      conn.close();
    })());
    if (++served === Number(a)) break;
  }
  await Promise.all(handlers); // every client served to its end before this process goes
  listener.close();
  result = { served };
} else if (mode === "client" || mode === "client-root") {
  const started = performance.now();
  // client-root: run as another uid, connecting to a listener of uid 0.
  const conn = await sm.connect(name, { timeoutMs: Number(b ?? 20_000), allowUids: mode === "client-root" ? [0] : [] });
  const connectMs = performance.now() - started;
  const n = Number(a);
  for (let i = 0; i < n; i++) {
    const message = new TextEncoder().encode(`message ${i} `.repeat(1 + (i % 7)));
    await conn.send(message);
    const echo = await conn.receive();
    if (echo === null || new TextDecoder().decode(echo) !== new TextDecoder().decode(message)) {
      throw new Error(`echo ${i} came back wrong`);
    }
  }
  conn.close();
  result = { echoed: n, connectMs, peer: conn.peer };
} else if (mode === "client-hang") {
  const conn = await sm.connect(name);
  await conn.send(new Uint8Array([1, 2, 3]));
  say("CONNECTED");
  await forever();
} else if (mode === "client-exit") {
  const conn = await sm.connect(name);
  for (let i = 1; i <= Number(a); i++) await conn.send(new Uint8Array([i]));
  say("SENT");
  process.exit(0); // no close: the process just ends, as a crash would end it
} else if (mode === "serve-hang") {
  const listener = await sm.listen(name);
  say("LISTENING");
  await listener.accept();
  say("ACCEPTED");
  await forever();
} else if (mode === "raw") {
  const os = sm.os;
  const fd = os.connectUnix(name, "seqpacket");
  const bytes = a === "garbage"
    ? crypto.getRandomValues(new Uint8Array(32))
    : a === "short"
    ? new Uint8Array([0x53, 0x56, 0x4d])
    : a === "big"
    ? new Uint8Array(4000).fill(0x48)
    : new Uint8Array(0);
  if (a !== "silent") os.sendPacket(fd, bytes);
  say("SENT");
  const buffer = new Uint8Array(4096);
  for (let i = 0; i < 100; i++) {
    const got = os.recvPacket(fd, buffer);
    if (got !== null) {
      say(`ANSWER ${got.length} ${new TextDecoder().decode(buffer.subarray(32, got.length))}`);
      for (const passed of got.fds) os.close(passed);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await forever();
} else if (mode === "forge") {
  const os = sm.os;
  const fd = os.connectUnix(name, "seqpacket");
  // The listener's own doorbell: the abstract socket named svm-wake-KEY among its process's fds.
  const pid = os.peerCredentials(fd).pid;
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).map((f) => readlinkOr(`/proc/${pid}/fd/${f}`)).filter((l) =>
      l.startsWith("socket:")
    ),
  );
  const line = readFileSync("/proc/net/unix", "utf8").split("\n").find((l) => {
    const fields = l.trim().split(/\s+/);
    return /^@svm-wake-[0-9a-f]{8}$/.test(fields[7] ?? "") && inodes.has(`socket:[${fields[6]}]`);
  });
  if (line === undefined) throw new Error(`no doorbell among the fds of ${pid}`);
  const key = parseInt(line.trim().split(/\s+/)[7].slice(-8), 16);
  os.sendPacket(fd, encodeHello({ doorbell: key }));
  try {
    os.close(os.connectUnix(bellName(name))); // a ring, so that the listener looks now
  } catch { /* it polls besides */ }
  const buffer = new Uint8Array(4096);
  for (let i = 0; i < 200; i++, await new Promise((r) => setTimeout(r, 10))) {
    const got = os.recvPacket(fd, buffer);
    if (got === null) continue;
    // Answered. The passed fds stay open and the segment is never attached.
    say(`FORGED ${key.toString(16)}`);
    await forever();
  }
  throw new Error("no answer");
} else if (mode === "stream") {
  const conn = await sm.connect(name);
  const total = Number(a);
  const writer = conn.writable.getWriter();
  const chunk = new Uint8Array(64 * 1024);
  for (let sent = 0; sent < total;) {
    const n = Math.min(chunk.length, total - sent);
    for (let i = 0; i < n; i++) chunk[i] = patternByte(sent + i, 2);
    await writer.write(chunk.slice(0, n));
    sent += n;
  }
  await writer.close();
  conn.close();
  result = { sent: total };
} else {
  throw new Error(`unknown mode ${mode}`);
}
say(`DONE ${JSON.stringify(result)}`);
