// Connections by name (issue 12): either side first, across runtimes; peers killed mid-handshake,
// mid-stream, and listeners killed under their clients; foreign uids; hostile handshakes from raw
// sockets on both sides; stale socket files; and thousands of connections without growth.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { SegmentError, SegmentMain } from "../mod.ts";
import { OsError } from "../ffi/os.ts";
import { encodeAnswer, encodeHello } from "../src/connection/handshake.ts";
import { ANSWER_ACCEPTED, bellName, HELLO_SIZE } from "../src/layout.ts";
import {
  expectGoneAfterKill,
  expectSuccess,
  fdsSettled,
  holdConnections,
  isCode,
  OTHER,
  patternByte,
  ROOT,
  RUNTIME,
  runtimeBinary,
  scriptCommand,
  SEED,
  startCommand,
  startPeer,
  startReaper,
  tempPath,
  tracked,
  uniqueName,
  xorshift,
} from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Looks every 10 ms, for up to `ms`, until `done()` (then asserted by the caller). */
async function until(done: () => boolean, ms = 1000): Promise<void> {
  for (const end = performance.now() + ms; !done() && performance.now() < end;) await sleep(10);
}
const done = (stdout: string) => JSON.parse(stdout.split("DONE ")[1]);
startReaper(); // its pipe is open before any fd is counted
const fds = () => readdirSync("/proc/self/fd").length;
const CLIENTS = process.env.SVM_LONG ? 100 : 16;
const KILLS = process.env.SVM_LONG ? 200 : 16;
/** Mappings of memfd files: our segments (the engine's own heap mappings come and go). */
const maps = () => readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes("/memfd:")).length;

test(`either side first: a ${OTHER} client that starts before this listener, and a ${OTHER} listener this client waits for`, async () => {
  {
    const name = uniqueName("first-client");
    const client = startPeer(OTHER, "conn_peer", ["client", name, "200"]);
    await sleep(300); // the client is up and waiting for a listener that is not there yet
    using sm = new SegmentMain();
    using listener = await sm.listen(name);
    const conn = (await listener.accept())!;
    assert.equal(conn.peer.pid, client.pid === conn.peer.pid ? client.pid : conn.peer.pid);
    for await (const message of conn.messages()) await conn.send(message);
    conn.close();
    const result = await client.done;
    expectSuccess(result, "client");
    assert.equal(done(result.stdout).echoed, 200);
    assert.equal(sm.size, 0, "the connection's segment left the pool when it closed");
  }
  {
    const name = uniqueName("first-server");
    using sm = new SegmentMain();
    const connecting = sm.connect(name, { timeoutMs: 30_000 });
    await sleep(200);
    const server = startPeer(OTHER, "conn_peer", ["serve", name, "1"]);
    const conn = await connecting;
    assert.equal(sm.size, 1, "the connection's segment is in this pool");
    for (let i = 0; i < 100; i++) {
      const message = new Uint8Array(1 + (i * 37) % 3000).fill(i);
      await conn.send(message);
      assert.deepEqual(await conn.receive(), message);
    }
    conn.close();
    expectSuccess(await server.done, "server");
    assert.equal(sm.size, 0);
  }
});

test("connect gives up with 'timeout' when nobody listens; bad names and options are refused", async () => {
  using sm = new SegmentMain();
  const started = performance.now();
  await assert.rejects(sm.connect(uniqueName("nobody"), { timeoutMs: 150 }), isCode("timeout"));
  assert.ok(performance.now() - started >= 140);
  await assert.rejects(sm.connect(""), TypeError);
  await assert.rejects(sm.connect("x\0y"), TypeError);
  await assert.rejects(sm.listen("a".repeat(200)), RangeError);
  await assert.rejects(sm.listen(uniqueName("opts"), { allowUids: [-1] }), TypeError);
  await assert.rejects(sm.listen(uniqueName("opts"), { fifoSize: 0 }), RangeError);
  // Checked when listening, not at each client's handshake (where they only refused every client).
  const bad: [string, unknown][] = [
    ["segmentSize", "1 MiB"],
    ["segmentSize", 4096], // too small for two fifos
    ["segmentSize", 2 ** 33],
    ["handshakeTimeoutMs", "5"],
    ["handshakeTimeoutMs", -1],
    ["onRefused", "log"],
    ["backlog", 0],
    ["backlog", 1.5],
    ["backlog", "8"],
  ];
  for (const [option, value] of bad) {
    const name = uniqueName("opts");
    await assert.rejects(
      sm.listen(name, { [option]: value }),
      (e) => e instanceof TypeError || e instanceof RangeError,
    );
    using listener = await sm.listen(name); // nothing of the refused one holds the name
    assert.equal(listener.name, name);
  }
});

/**
 * A connection with both ends in this process, over fifos of 4 KiB: its client and its server
 * (accepted) end; disposing it closes both ends, the listener and their SegmentMain.
 */
async function localConnection(tag: string) {
  const sm = new SegmentMain();
  const name = uniqueName(tag);
  const listener = await sm.listen(name, { fifoSize: 4096 });
  const client = await sm.connect(name);
  const server = (await listener.accept())!;
  return {
    client,
    server,
    [Symbol.dispose]() {
      server[Symbol.dispose]();
      client[Symbol.dispose]();
      listener[Symbol.dispose]();
      sm[Symbol.dispose]();
    },
  };
}

test(`bytes and messages both ways in one process; close lets the peer drain, then it sees the end`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("drain");
  using listener = await sm.listen(name);
  const client = await sm.connect(name);
  const server = (await listener.accept())!;
  assert.equal(server.peer.pid, process.pid);
  await assert.rejects(server.send(new Uint8Array(server.tx.size)), RangeError);
  for (let i = 0; i < 10; i++) await client.send(new Uint8Array([i]));
  client.close();
  const got: number[] = [];
  for await (const message of server.messages()) got.push(message[0]);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "every message sent before close arrives, then the end");
  assert.equal(await server.receive(), null);
  await assert.rejects(client.send(new Uint8Array(1)), isCode("deleted"));
  // The client's end of the pair is closed: nobody will read what the server sends.
  await until(() => server.signal.aborted);
  assert.match(String(server.signal.reason), /peer-gone|closed it/);
  await assert.rejects(
    server.send(new Uint8Array(1)),
    (e: Error) => isCode("peer-gone")(e) && /closed it/.test(e.message),
  );
  assert.equal(await server.receive(), null, "reads still end as the client closed them");
  for await (const _ of server.readable) assert.fail("nothing more to read");
  server.close();
  assert.equal(sm.size, 0);
});

test(`a ${OTHER} client streams 32 MiB through writable; readable here checks every byte`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("stream");
  using listener = await sm.listen(name);
  const total = 32 << 20;
  const client = startPeer(OTHER, "conn_peer", ["stream", name, String(total)]);
  const conn = (await listener.accept())!;
  let got = 0;
  let bad = 0;
  for await (const chunk of conn.readable) {
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== patternByte(got + i, 2)) bad++;
    got += chunk.length;
  }
  assert.equal(got, total);
  assert.equal(bad, 0);
  expectSuccess(await client.done, "streaming client");
  conn.close();
});

test(`a ${OTHER} client killed mid-stream: the pending receive ends with peer-gone at once, the segment is unmapped`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("kill-client");
  using listener = await sm.listen(name);
  const client = startPeer(OTHER, "conn_peer", ["client-hang", name]);
  try {
    const conn = (await listener.accept())!;
    assert.deepEqual(await conn.receive(), new Uint8Array([1, 2, 3]));
    const pending = conn.receive();
    pending.catch(() => {}); // asserted below; the rejection may come before the assertion runs
    await client.line(/^CONNECTED/);
    await expectGoneAfterKill(client, pending, 500);
    assert.equal(conn.closed, true);
    assert.equal(sm.size, 0, "the connection's segment is unmapped");
    await assert.rejects(conn.send(new Uint8Array(1)), isCode("peer-gone"));
  } finally {
    client.kill("SIGKILL");
    await client.done;
  }
});

test(`a ${OTHER} client whose hello names another doorbell (the listener's own) and that dies: peer-gone within a second`, async () => {
  // The death of the process at the other end is seen by the kernel, not through a word the peer wrote.
  using sm = new SegmentMain();
  const name = uniqueName("forge");
  using listener = await sm.listen(name);
  (await sm.connect(name)).close(); // this process's doorbell is open now, for the client to name
  (await listener.accept())!.close();
  const client = startPeer(OTHER, "conn_peer", ["forge", name]);
  try {
    const conn = (await Promise.race([
      listener.accept(),
      client.done.then((r) => Promise.reject(new Error(`the forging client ended: ${r.stdout} ${r.stderr}`))),
    ]))!;
    await client.line(/^FORGED/);
    const pending = conn.receive({ timeoutMs: 5000 });
    pending.catch(() => {}); // asserted below
    await expectGoneAfterKill(client, pending, 1000);
    assert.equal(sm.size, 0, "the connection's segment is unmapped");
  } finally {
    client.kill("SIGKILL");
    await client.done;
  }
});

test(`disposing a SegmentMain closes its listeners and connections: a ${OTHER} server reads the end, no fd stays open`, async () => {
  const name = uniqueName("dispose");
  const other = uniqueName("dispose-l");
  const before = fds();
  const server = startPeer(OTHER, "conn_peer", ["serve", name, "1"]);
  try {
    await server.line(/^LISTENING/);
    const sm = new SegmentMain();
    const conn = await sm.connect(name);
    await conn.send(new Uint8Array([7]));
    assert.deepEqual(await conn.receive(), new Uint8Array([7]));
    await sm.listen(other);
    sm[Symbol.dispose]();
    assert.equal(conn.closed, true, "the connection is closed with its SegmentMain");
    // The server's echo loop ends (receive gives null) only if it saw the end of the connection.
    const served = await server.done;
    expectSuccess(served, "the server");
    assert.deepEqual(done(served.stdout), { served: 1 });
    using again = new SegmentMain();
    using listener = await again.listen(other); // the disposed main's listener let go of the name
    assert.equal(listener.name, other);
  } finally {
    server.kill("SIGKILL");
    await server.done;
  }
  // Sockets watched by the event loop are closed by it, a turn or so later.
  await until(() => fds() === before);
  assert.equal(fds(), before, "every fd of the disposed SegmentMain and of its connection is closed");
});

test(`${CLIENTS} ${OTHER} client processes come and go: the listener keeps no line to a dead one's doorbell`, async () => {
  // Each client sleeps in its receive, so the server's echo rings its doorbell on a kept line.
  using sm = new SegmentMain();
  const name = uniqueName("churn");
  using listener = await sm.listen(name);
  const serving = (async () => {
    for await (const conn of listener) {
      for await (const message of conn.messages()) await conn.send(message);
      conn.close();
    }
  })();
  let warm = 0;
  for (let i = 0; i < CLIENTS; i++) {
    expectSuccess(await startPeer(OTHER, "conn_peer", ["client", name, "3"]).done, `client ${i}`);
    if (i === 1) warm = fds();
  }
  await sleep(50);
  const grown = fds() - warm;
  assert.ok(grown <= 8, `${grown} fds more after ${CLIENTS - 2} more clients came and went`);
  listener.close();
  await serving;
});

test(`${KILLS} ${OTHER} clients SIGKILLed at random moments (before, during and after the handshake, mid-echo): the listener keeps nothing of them`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("kills");
  using listener = await sm.listen(name);
  const ended: string[] = [];
  const serving = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) {
      handlers.push((async () => {
        try {
          for await (const message of conn.messages()) await conn.send(message);
          ended.push("end");
        } catch (error) {
          if (!isCode("peer-gone")(error)) throw error;
          ended.push("peer-gone");
        }
        conn.close();
      })());
    }
    await Promise.all(handlers);
  })();
  // A first client that comes and goes, so that the doorbell and the bell are open before the count.
  expectSuccess(await startPeer(OTHER, "conn_peer", ["client", name, "1"]).done, "the first client");
  const before = fds();
  const random = xorshift(SEED + 77);
  for (let i = 0; i < KILLS; i++) {
    const client = startPeer(OTHER, "conn_peer", ["client", name, "100000"]);
    await sleep(random() * 300);
    client.kill("SIGKILL");
    await client.done;
  }
  await until(() => sm.size === 0 && fds() <= before + 8, 2000);
  assert.equal(sm.size, 0, `no connection's segment stays (${ended.length} connections ended)`);
  assert.ok(fds() <= before + 8, `${fds() - before} fds more after ${KILLS} killed clients`);
  listener.close();
  await serving;
  assert.ok(ended.every((e) => e === "peer-gone" || e === "end"));
});

test("a listener holds at most its backlog of connections its program has not accepted; the rest get in as it accepts", async () => {
  using sm = new SegmentMain();
  using clients = new SegmentMain();
  const name = uniqueName("backlog");
  using listener = await sm.listen(name, { backlog: 8, fifoSize: 4096 });
  const connecting = Array.from({ length: 30 }, () => clients.connect(name, { timeoutMs: 20_000 }));
  await sleep(300);
  for (let i = 0; i < 5; i++, await sleep(10)) listener.pump();
  assert.ok(sm.size <= 8, `${sm.size} connections made that nobody accepted`);
  const served: Promise<void>[] = [];
  for (let i = 0; i < 30; i++) {
    const conn = (await listener.accept())!;
    served.push((async () => {
      for await (const message of conn.messages()) await conn.send(message);
      conn.close();
    })());
    assert.ok(sm.size <= 8 + i + 1, `${sm.size} segments after ${i + 1} accepted`);
  }
  for (const [i, pending] of connecting.entries()) {
    const conn = await pending;
    await conn.send(new Uint8Array([i]));
    assert.deepEqual(await conn.receive(), new Uint8Array([i]));
    conn.close();
  }
  await Promise.all(served);
});

test("a flood of connections that never say hello holds at most the backlog of the listener's fds", async () => {
  using sm = new SegmentMain();
  const os = sm.os;
  const name = uniqueName("flood");
  using listener = await sm.listen(name, { backlog: 16, handshakeTimeoutMs: 60_000 });
  const before = fds();
  const silent: number[] = [];
  try {
    for (let i = 0; i < 300; i++) {
      try {
        silent.push(os.connectUnix(name, "seqpacket"));
      } catch (error) {
        if (!(error instanceof OsError && error.code === "EAGAIN")) throw error; // the kernel's queue is full
      }
    }
    for (let i = 0; i < 5; i++, await sleep(10)) listener.pump();
    const held = fds() - before - silent.length;
    assert.ok(held <= 16, `the listener holds ${held} fds for ${silent.length} silent connections`);
  } finally {
    for (const fd of silent) os.close(fd);
  }
});

/** Asserts that `connecting` rejects with "deleted" within `ms`. */
async function deletedWithin(connecting: Promise<unknown>, ms: number): Promise<void> {
  const outcome = await Promise.race([
    connecting.then(() => "connected", (error) => error),
    sleep(ms).then(() => "still pending"),
  ]);
  assert.ok(outcome instanceof SegmentError && outcome.code === "deleted", String(outcome));
}

/**
 * A listener of backlog 1 whose one place a first client holds: the next client's hello is not
 * answered until `listener.accept()` takes the first. Disposing it closes them all.
 */
async function busyListener(tag: string) {
  const server = new SegmentMain();
  const name = uniqueName(tag);
  const listener = await server.listen(name, { backlog: 1 });
  const first = new SegmentMain();
  const held = await first.connect(name);
  return {
    name,
    listener,
    held,
    [Symbol.dispose]() {
      held.close();
      first[Symbol.dispose]();
      listener.close();
      server[Symbol.dispose]();
    },
  };
}

test("a SegmentMain disposed while it waits for an answer, or before it listens, rejects with 'deleted' at once; the listener goes on", async () => {
  using busy = await busyListener("late");
  const { name, listener, held } = busy;
  const sm = new SegmentMain();
  const connecting = sm.connect(name, { timeoutMs: 5000 });
  await sleep(100);
  sm[Symbol.dispose]();
  // Before, it waited for the answer (or its timeout), and then rejected.
  await deletedWithin(connecting, 500);
  assert.equal(sm.size, 0);
  await assert.rejects(sm.listen(uniqueName("late-l")), isCode("deleted"));
  await assert.rejects(sm.connect(name, { timeoutMs: 1000 }), isCode("deleted"));
  (await listener.accept())!.close(); // the first's: room now, and the gone client's hello is read
  using later = new SegmentMain();
  const next = later.connect(name, { timeoutMs: 5000 });
  const accepted = (await listener.accept())!;
  const conn = await next;
  await conn.send(Uint8Array.of(7));
  assert.deepEqual(await accepted.receive({ timeoutMs: 2000 }), Uint8Array.of(7), "the next client gets in");
  accepted.close();
  conn.close();
  held.close();
});

test("a SegmentMain disposed while its connect waits for a listener to appear rejects it with 'deleted' at once", async () => {
  const sm = new SegmentMain();
  const connecting = sm.connect(uniqueName("nobody"), { timeoutMs: 5000 });
  await sleep(100);
  sm[Symbol.dispose]();
  await deletedWithin(connecting, 500); // before: "timeout", after 5 s
});

test("a connect ends with its signal's reason when the signal aborts, whether it waits for a listener or for an answer", async () => {
  using busy = await busyListener("aborted");
  const { name, listener, held } = busy;
  using sm = new SegmentMain();
  for (const target of [uniqueName("nobody"), name]) {
    const stop = new AbortController();
    const connecting = sm.connect(target, { timeoutMs: 5000, signal: stop.signal });
    await sleep(100);
    stop.abort(new Error("stopped"));
    const outcome = await Promise.race([
      connecting.then(() => "connected", (e) => e),
      sleep(500).then(() => "pending"),
    ]);
    assert.ok(outcome instanceof Error && outcome.message === "stopped", `${target}: ${outcome}`);
  }
  assert.equal(sm.size, 0);
  held.close();
  (await listener.accept())!.close();
});

test("a client rings a listener's bell on a kept connection: after that listener closes, it rings the next one on the name", async () => {
  using sm = new SegmentMain(); // the client's pool: its bell connection outlives the first listener
  using server = new SegmentMain();
  const name = uniqueName("rebell");
  const round = async () => {
    using listener = await server.listen(name);
    const taken = (async () => {
      for (let i = 0; i < 10; i++) (await listener.accept())!.close();
    })();
    const start = performance.now();
    for (let i = 0; i < 10; i++) (await sm.connect(name)).close();
    const ms = performance.now() - start;
    await taken;
    return ms;
  };
  await round();
  // A listener that found each HELLO only at its 100 ms poll would take about half a second.
  const ms = await round();
  assert.ok(ms < 300, `10 connects to the second listener took ${ms.toFixed(0)} ms`);
});

test("a pending receive ends: with 'timeout', with its signal's reason, and with 'deleted' when this side closes", async () => {
  using sm = new SegmentMain();
  const name = uniqueName("pending");
  using listener = await sm.listen(name);
  using client = await sm.connect(name);
  const server = (await listener.accept())!;
  await assert.rejects(server.receive({ timeoutMs: 20 }), isCode("timeout"));
  const stop = new AbortController();
  const stopped = server.receive({ signal: stop.signal });
  setTimeout(() => stop.abort(new Error("stop")), 10);
  await assert.rejects(stopped, /stop/);
  const pending = server.receive();
  pending.catch(() => {}); // asserted below
  await sleep(10);
  server.close();
  await assert.rejects(pending, isCode("deleted"));
  await client.send(new Uint8Array([1])).catch(() => {}); // the peer closed: either way, nothing hangs
});

test("messages of every length from 0 to 300 B, across the end of a 4 KiB fifo at many positions, arrive intact", async () => {
  using pair = await localConnection("wrap");
  const { client, server } = pair;
  const ring = server.rx.size;
  let position = 0; // of the next frame in the ring (a u32 length, then the payload)
  let split = 0; // payloads that straddle the ring's end
  for (let i = 0; i < 3000; i++) {
    const length = (i * 37) % 301;
    const message = new Uint8Array(length);
    for (let j = 0; j < length; j++) message[j] = (i * 7 + j) & 0xff;
    await client.send(message);
    const got = await server.receive();
    assert.ok(got !== null);
    assert.equal(got.length, length, `message ${i}: its length`);
    for (let j = 0; j < length; j++) {
      if (got[j] !== ((i * 7 + j) & 0xff)) assert.fail(`message ${i}, byte ${j}: ${got[j]}`);
    }
    const payloadAt = (position + 4) % ring;
    if (payloadAt + length > ring) split++;
    position = (position + 4 + length) % ring;
  }
  assert.ok(split > 50, `${split} payloads straddled the ring's end`);
});

test("sends made while earlier ones wait for room arrive whole and in the order made, and receives made at once each get the next message", async () => {
  using pair = await localConnection("order");
  const { client, server } = pair;
  const message = (i: number) => Uint8Array.from({ length: 100 + (i % 50) }, (_, j) => (i * 13 + j) & 0xff);
  // Fill tx, then send 40 more without waiting for any: most of them wait for room.
  let i = 0;
  while (client.tx.maxEnqueue >= 4 + message(i).length) await client.send(message(i++));
  const sends = Array.from({ length: 40 }, () => client.send(message(i++)));
  // Receive them all, several asked for at once each time.
  for (let k = 0; k < i;) {
    const batch = await Promise.all(Array.from({ length: Math.min(7, i - k) }, () => server.receive()));
    for (const got of batch) {
      assert.deepEqual(got, message(k), `message ${k}`);
      k++;
    }
  }
  await Promise.all(sends);
  assert.equal(server.rx.maxDequeue, 0);
});

test("a message whose buffer was transferred is sent empty, like any empty message; the connection goes on", async () => {
  using pair = await localConnection("emptied");
  const { client, server } = pair;
  const message = Uint8Array.of(1, 2, 3);
  message.buffer.transfer();
  await client.send(message);
  await client.send(Uint8Array.of(4));
  assert.deepEqual(await server.receive(), new Uint8Array(0));
  assert.deepEqual(await server.receive(), Uint8Array.of(4));
});

test("send and receive check their options whether or not they wait; an aborted signal sends and takes nothing", async () => {
  using pair = await localConnection("options");
  const { client, server } = pair;
  for (const options of [{ timeoutMs: "5" }, { signal: {} }, 7]) {
    await assert.rejects(client.send(Uint8Array.of(1), options as never), TypeError, JSON.stringify(options));
  }
  const aborted = { signal: AbortSignal.abort(new Error("already")) };
  await assert.rejects(client.send(Uint8Array.of(1), aborted), /already/);
  assert.equal(server.rx.maxDequeue, 0, "nothing was sent");
  await client.send(Uint8Array.of(2));
  for (const options of [{ timeoutMs: "5" }, { signal: {} }, 7]) {
    await assert.rejects(server.receive(options as never), TypeError, JSON.stringify(options));
  }
  await assert.rejects(server.receive(aborted), /already/);
  assert.deepEqual(await server.receive(null as never), Uint8Array.of(2), "the message stayed; null options are none");
  const sm = new SegmentMain();
  try {
    await assert.rejects(sm.connect(uniqueName("nobody"), { timeoutMs: "50" as never }), TypeError);
    await assert.rejects(sm.connect(uniqueName("nobody"), { signal: {} as never }), TypeError);
  } finally {
    sm[Symbol.dispose]();
  }
});

test("a receive or send queued behind one that waits still ends at its own timeout or signal, and the one before it goes on", async () => {
  using pair = await localConnection("queued");
  const { client, server } = pair;
  const first = server.receive(); // waits, with neither timeout nor signal
  await assert.rejects(server.receive({ timeoutMs: 30 }), isCode("timeout"));
  const stop = new AbortController();
  const aborted = server.receive({ signal: stop.signal });
  stop.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
  await client.send(Uint8Array.of(1, 2, 3));
  assert.deepEqual(await first, Uint8Array.of(1, 2, 3));
  // The same for sends: fill tx, then one waits for room and one queued behind it times out.
  const big = new Uint8Array(1000);
  while (client.tx.maxEnqueue >= 4 + big.length) await client.send(big);
  while (client.tx.maxEnqueue >= 4 + 1) await client.send(Uint8Array.of(0));
  const waiting = client.send(Uint8Array.of(9));
  await assert.rejects(client.send(Uint8Array.of(7), { timeoutMs: 30 }), isCode("timeout"));
  const stop2 = new AbortController();
  const aborted2 = client.send(Uint8Array.of(8), { signal: stop2.signal });
  stop2.abort(new Error("stop"));
  await assert.rejects(aborted2, /stop/);
  let last: Uint8Array | null;
  do last = await server.receive(); while (last!.length === big.length || last![0] === 0);
  assert.deepEqual(last, Uint8Array.of(9));
  await waiting;
  assert.equal(server.rx.maxDequeue, 0, "the timed-out and the aborted send sent nothing");
});

test(`a ${OTHER} client that sends and exits without close: every message it sent is still received, then peer-gone`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("exit-client");
  using listener = await sm.listen(name);
  for (const reader of ["receive", "readable"] as const) {
    const client = startPeer(OTHER, "conn_peer", ["client-exit", name, "5"]);
    try {
      const conn = (await listener.accept())!;
      await client.line(/^SENT/);
      expectSuccess(await client.done, "client");
      const died = performance.now();
      while (!conn.signal.aborted && performance.now() - died < 2000) await sleep(10);
      assert.equal(conn.signal.aborted, true, "the connection knows its peer died");
      assert.equal(conn.closed, false, "but keeps what the peer sent until it is read");
      const got: number[] = [];
      if (reader === "receive") {
        for (let i = 0; i < 5; i++) got.push(...(await conn.receive())!);
        await assert.rejects(conn.receive(), isCode("peer-gone"));
      } else {
        const stream = conn.readable.getReader();
        const bytes: number[] = [];
        await assert.rejects(async () => {
          for (;;) {
            const { value, done } = await stream.read();
            if (done) break;
            bytes.push(...value);
          }
        }, isCode("peer-gone"));
        for (let at = 0; at + 5 <= bytes.length; at += 5) got.push(bytes[at + 4]); // frames: u32 length 1, the byte
      }
      assert.deepEqual(got, [1, 2, 3, 4, 5], `${reader}: everything sent before the exit`);
      const drained = performance.now();
      while (!conn.closed && performance.now() - drained < 2000) await sleep(10);
      assert.equal(conn.closed, true, "released once read");
      assert.equal(sm.size, 0, "the connection's segment is unmapped");
      await assert.rejects(conn.send(new Uint8Array(1)), isCode("peer-gone"));
    } finally {
      client.kill("SIGKILL");
      await client.done;
    }
  }
});

test(`a ${OTHER} listener killed with this client connected: receive ends with peer-gone at once`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("kill-listener");
  const server = startPeer(OTHER, "conn_peer", ["serve-hang", name]);
  try {
    const conn = await sm.connect(name, { timeoutMs: 30_000 });
    await server.line(/^ACCEPTED/);
    const pending = conn.receive();
    pending.catch(() => {}); // asserted below
    await expectGoneAfterKill(server, pending, 500);
    assert.equal(sm.size, 0);
    // The name is free again: a new listener takes it.
    using again = await sm.listen(name);
    assert.equal(again.name, name);
  } finally {
    server.kill("SIGKILL");
    await server.done;
  }
});

test(`hostile clients (raw ${OTHER} sockets): garbage, short, oversized and silent hellos are refused with reasons; real clients still get in`, async () => {
  using sm = new SegmentMain();
  const name = uniqueName("raw");
  const refusals: string[] = [];
  using listener = await sm.listen(name, { handshakeTimeoutMs: 300, onRefused: (r) => refusals.push(r.reason) });
  const raws = ["garbage", "short", "big", "silent"].map((what) => startPeer(OTHER, "conn_peer", ["raw", name, what]));
  try {
    for (const [i, raw] of raws.entries()) {
      await raw.line(/^SENT/);
      if (i < 3) assert.match(await raw.line(/^ANSWER/), /hello/, "the refusal says what was wrong");
    }
    await sleep(600); // the silent one times out
    assert.equal(listener.refused, 4);
    assert.equal(refusals.length, 4);
    assert.ok(refusals.some((r) => /no hello in time/.test(r)));
    // One killed mid-handshake, before its hello.
    const killed = startPeer(OTHER, "conn_peer", ["raw", name, "silent"]);
    await killed.line(/^SENT/);
    killed.kill("SIGKILL");
    await killed.done;
    await sleep(250);
    assert.equal(listener.refused, 5);
    const client = startPeer(OTHER, "conn_peer", ["client", name, "10"]);
    const conn = (await listener.accept())!;
    for await (const message of conn.messages()) await conn.send(message);
    expectSuccess(await client.done, "a real client after the hostile ones");
    conn.close();
    assert.equal(sm.size, 0, "no segment made for a hostile client");
  } finally {
    for (const raw of raws) raw.kill("SIGKILL");
    await Promise.all(raws.map((r) => r.done));
  }
});

test(`connections another process holds open to a ${OTHER} listener's bell, and silent ones to its name, cannot run it out of fds: clients still get in`, async () => {
  // Anyone can connect to an abstract socket. Without a bound, 400 connections held open to the
  // bell took a listener limited to 128 fds to its limit, and it could make no segment for a
  // client; so did 300 connections to its name that never said hello (its default backlog was 128).
  const name = uniqueName("bell-flood");
  const [bin, argv] = scriptCommand(OTHER, `${ROOT}/tests/peers/conn_peer.ts`, ["serve", name, "3"]);
  const server = startCommand("prlimit", ["--nofile=128:128", bin, ...argv]);
  let flood: ReturnType<typeof holdConnections> | undefined;
  const silent: number[] = [];
  using sm = new SegmentMain();
  try {
    await server.line(/^LISTENING/);
    flood = holdConnections(bellName(name), 400);
    await flood.line(/^HELD/);
    for (let i = 0; i < 300; i++) {
      try {
        silent.push(sm.os.connectUnix(name, "seqpacket"));
      } catch (error) {
        if (!(error instanceof OsError && error.code === "EAGAIN")) throw error; // the kernel's queue is full
      }
    }
    await sleep(300); // the listener takes what its backlog allows
    // A quarter of the limit for the connections it holds, another for the handshakes under way.
    const held = await fdsSettled(server.pid, 112);
    for (const fd of silent.splice(0)) sm.os.close(fd);
    for (let i = 0; i < 3; i++) {
      const conn = await sm.connect(name, { timeoutMs: 5000 });
      const message = new Uint8Array(100).fill(i);
      await conn.send(message);
      assert.deepEqual(await conn.receive(), message);
      conn.close();
    }
    expectSuccess(await server.done, "the listener");
    assert.ok(held <= 112, `the listener holds ${held} fds of its 128`);
  } finally {
    for (const fd of silent) sm.os.close(fd);
    flood?.kill();
    server.kill();
    await flood?.done;
  }
});

test("clients that leave right after their hello: the listener's answer fails, and it keeps no fd and no segment", async () => {
  using sm = new SegmentMain();
  const os = sm.os;
  const name = uniqueName("quit");
  const refusals: string[] = [];
  using listener = await sm.listen(name, { onRefused: (r) => refusals.push(r.reason) });
  const before = fds();
  for (let i = 0; i < 20; i++) {
    const fd = os.connectUnix(name, "seqpacket");
    os.sendPacket(fd, encodeHello({ doorbell: 1 }));
    os.close(fd); // gone before the listener looks
  }
  listener.pump();
  await until(() => listener.refused >= 20);
  assert.equal(listener.refused, 20, refusals.join("; "));
  assert.ok(refusals.every((r) => /could not open the connection/.test(r)), refusals[0]);
  assert.equal(sm.size, 0, "no segment stays");
  await until(() => fds() <= before); // an earlier test's sockets may still be closing
  assert.ok(fds() <= before, `${fds() - before} fds stay`);
});

test("a hostile listener: garbage answers, missing or extra fds, bad offsets are typed errors; nothing is left behind", async () => {
  using sm = new SegmentMain();
  const os = sm.os;
  const name = uniqueName("fake");
  const fd = os.listenUnix(name, 8, "seqpacket");
  const template = new SegmentMain();
  const segment = template.create({ type: "memfd", name: "fake", size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  const answer = (rx: number, tx: number) =>
    encodeAnswer({ status: ANSWER_ACCEPTED, segmentSize: segment.size, rx, tx, reason: "" });
  const [end, far] = os.socketPair();
  // A listening socket never reads the end of a stream: a watch on it would never learn of the listener's death.
  const listening = os.listenUnix(uniqueName("fake-life"), 1, "stream");
  const good = answer(fifo.offset, fifo.offset + 4352);
  const second = segment.allocFifo(4096)!;
  const whole = answer(fifo.offset, second.offset); // what a real listener answers
  const cases: [string, Uint8Array, number[]][] = [
    ["garbage", crypto.getRandomValues(new Uint8Array(40)), []],
    ["no fd", good, []],
    ["no socket", good, [segment.fd!]],
    ["three fds", good, [segment.fd!, end, end]],
    ["a file for the socket", good, [segment.fd!, segment.fd!]],
    ["a listening stream socket for the pair's end", whole, [segment.fd!, listening]],
    ["a seqpacket socket for the pair's end", whole, [segment.fd!, fd]],
    ["one fifo twice", answer(fifo.offset, fifo.offset), [segment.fd!, end]],
    ["an offset that is no fifo", answer(fifo.offset, 12345), [segment.fd!, end]],
  ];
  try {
    let fdsBefore = 0;
    for (const [round, [what, bytes, passed]] of [...cases, ...cases].entries()) {
      if (round === cases.length) fdsBefore = fds(); // after a first pass opened the doorbell
      const connecting = sm.connect(name, { timeoutMs: 5000 });
      let conn = -1;
      for (let i = 0; i < 200 && conn < 0; i++, await sleep(5)) conn = os.accept(fd);
      const hello = new Uint8Array(64);
      for (let i = 0; i < 200; i++, await sleep(5)) {
        const got = os.recvPacket(conn, hello);
        if (got) {
          assert.equal(got.length, HELLO_SIZE);
          break;
        }
      }
      os.sendPacket(conn, bytes, passed);
      await assert.rejects(connecting, isCode("handshake"), what);
      os.close(conn);
      assert.equal(sm.size, 0, `${what}: no segment stays in the pool`);
    }
    assert.equal(fds(), fdsBefore, "every fd that came with an answer was closed");
  } finally {
    os.close(fd);
    os.close(end);
    os.close(far);
    os.close(listening);
    template[Symbol.dispose]();
  }
});

test("a listener that closes the connection with the hello unread (a reset): a 'handshake' error, nothing left behind", async () => {
  using sm = new SegmentMain();
  const os = sm.os;
  const name = uniqueName("reset");
  const fd = os.listenUnix(name, 8, "seqpacket");
  try {
    for (let round = 0; round < 2; round++) {
      const connecting = sm.connect(name, { timeoutMs: 5000 });
      let conn = -1;
      for (let i = 0; i < 200 && conn < 0; i++, await sleep(5)) conn = os.accept(fd);
      await sleep(50); // the hello has come
      os.close(conn); // unread: the client's next read fails with ECONNRESET
      await assert.rejects(connecting, isCode("handshake"));
      assert.equal(sm.size, 0);
    }
  } finally {
    os.close(fd);
  }
});

test("a path name: a dead listener's socket file is replaced, a live listener's never taken", async () => {
  using sm = new SegmentMain();
  const path = tempPath("sock", ".sock");
  const dead = sm.os.listenUnix(path, 1, "seqpacket");
  sm.os.close(dead); // the file stays, nobody listens: what a killed listener leaves
  assert.ok(existsSync(path));
  const listener = await sm.listen(path);
  await assert.rejects(sm.listen(path), isCode("in-use"));
  const client = sm.connect(path);
  const conn = (await listener.accept())!;
  (await client).close();
  conn.close();
  listener.close();
  assert.equal(existsSync(path), false, "closing the listener removes its file");
  // An abstract name is taken only once, too, and leaves no file anywhere.
  const name = uniqueName("abstract");
  using one = await sm.listen(name);
  await assert.rejects(sm.listen(name), isCode("in-use"));
  assert.equal(one.name, name);
});

/** Whether this process may run a child as another uid (root, and the runtime reachable by it). */
function canRunAs(uid: number): boolean {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return false;
  const [bin, argv] = scriptCommand(OTHER, `${ROOT}/tests/peers/conn_peer.ts`, ["nothing"]);
  const probe = spawnSync(bin, argv, { uid, gid: uid, encoding: "utf8" });
  return /unknown mode/.test(probe.stderr ?? "");
}

/** Runs a conn_peer mode as another uid, without blocking the event loop (the listener runs here). */
function runAs(uid: number, args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const [bin, argv] = scriptCommand(OTHER, `${ROOT}/tests/peers/conn_peer.ts`, args);
  const child = tracked(spawn(bin, argv, { uid, gid: uid, stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

test(`a ${OTHER} client of a foreign uid is refused and told why; allowUids lets it in`, async (t) => {
  const nobody = 65534;
  if (!canRunAs(nobody)) {
    t.skip("needs root and a runtime that uid 65534 can run");
    return;
  }
  using sm = new SegmentMain();
  const name = uniqueName("uid");
  const refusals: string[] = [];
  {
    using listener = await sm.listen(name, { onRefused: (r) => refusals.push(r.reason) });
    const refused = await runAs(nobody, ["client", name, "1", "5000"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /refused: uid 65534 may not connect/);
    assert.equal(listener.refused, 1);
    assert.match(refusals[0], /uid 65534/);
  }
  {
    using listener = await sm.listen(name, { allowUids: [nobody] });
    const child = runAs(nobody, ["client-root", name, "3"]);
    const conn = (await listener.accept())!;
    assert.equal(conn.peer.uid, nobody);
    for await (const message of conn.messages()) await conn.send(message);
    conn.close();
    const result = await child;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(done(result.stdout).echoed, 3);
  }
});

// 10,000 from the Deno run of the suite (and from every runtime with SVM_LONG=1); 2,000 from the others.
const CONNECTIONS = RUNTIME === "deno" || process.env.SVM_LONG === "1" ? 10_000 : 2_000;

test(`${CONNECTIONS} connections opened and closed in one process: no fd, mapping or segment growth`, async () => {
  const count = CONNECTIONS;
  using sm = new SegmentMain();
  const name = uniqueName("churn");
  using listener = await sm.listen(name, { fifoSize: 4096 });
  const once = async (i: number) => {
    const [client, server] = await Promise.all([sm.connect(name), listener.accept()]);
    await client.send(new Uint8Array([i & 0xff]));
    assert.equal((await server!.receive())![0], i & 0xff);
    if (i === 0) assert.ok(maps() >= 2, "both ends' mappings of an open connection are counted");
    client.close();
    server!.close();
  };
  for (let i = 0; i < 50; i++) await once(i); // warm up: the doorbell, the kept ring connections
  const before = { fds: fds(), maps: maps(), segments: sm.size };
  const started = performance.now();
  for (let i = 0; i < count; i++) await once(i);
  const ms = performance.now() - started;
  await sleep(200); // sockets the runtime closes asynchronously
  const after = { fds: fds(), maps: maps(), segments: sm.size };
  // A leak would grow with the count; the runtime may open a few handles of its own meanwhile.
  assert.ok(after.fds - before.fds < 16, `fds ${before.fds} -> ${after.fds} over ${count} connections`);
  assert.equal(after.maps, before.maps, "memfd mappings");
  assert.equal(after.segments, 0);
  console.log(`${RUNTIME}: ${count} connections in ${ms.toFixed(0)} ms (${(ms * 1000 / count).toFixed(0)} us each)`);
});

test("OsError, not a crash, for a name that cannot be bound", async () => {
  using sm = new SegmentMain();
  await assert.rejects(sm.listen("/nonexistent-dir-svm/x.sock"), (e: unknown) => e instanceof OsError);
  assert.equal(runtimeBinary(RUNTIME).length > 0, true);
});
