// The waker's side of the doorbell's pipe (src/wake/bell_line.ts): what a gate hands over is
// written to only when it is a pipe's write end; anything else is closed and the line rings on
// through the socket; a gate that stays silent is given up. Every fd is accounted for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { loadOs } from "../ffi/load.ts";
import { OsError } from "../ffi/os.ts";
import { O_NONBLOCK } from "../ffi/symbols.ts";
import { BellLine } from "../src/wake/bell_line.ts";
import { doorbellPipeGate } from "../src/layout.ts";
import { startReaper, uniqueName } from "./helpers.ts";

const os = loadOs();
startReaper(); // its pipe is open before any fd is counted
const openFds = () => readdirSync("/proc/self/fd").length;

/**
 * A doorbell socket and a gate that `answer` serves (it gets each connection's fd and closes
 * it afterwards), as a hostile or honest holder would; `run` gets a line to them and a reader of
 * the bytes that reached the socket. Everything is closed after.
 */
async function withGate(
  answer: ((conn: number) => void) | null,
  run: (line: BellLine, socketBytes: () => number) => void | Promise<void>,
): Promise<void> {
  const name = uniqueName("bell");
  const bell = os.listenUnix(name, 8);
  const gate = os.listenUnix(doorbellPipeGate(name), 8, "seqpacket");
  let line: BellLine | undefined;
  let conn = -1;
  try {
    line = BellLine.open(os, name, doorbellPipeGate(name));
    conn = os.accept(bell);
    assert.ok(conn >= 0, "the line connected to the socket");
    const gateConn = os.accept(gate);
    assert.ok(gateConn >= 0, "the line asked at the gate");
    if (answer) answer(gateConn);
    os.close(gateConn);
    const buffer = new Uint8Array(64);
    const socketBytes = () => {
      let n = 0;
      for (;;) {
        const got = os.recvPacket(conn, buffer);
        if (got === null || got.length === 0) return n;
        n += got.length;
      }
    };
    await run(line, socketBytes);
  } finally {
    line?.close();
    if (conn >= 0) os.close(conn);
    os.close(gate);
    os.close(bell);
  }
}

/** Runs `body` and checks that it left no fd open. */
async function noFdLeft(body: () => Promise<void> | void): Promise<void> {
  const before = openFds();
  await body();
  assert.equal(openFds(), before, "every fd closed");
}

/** Rings `n` times; the bytes that reached the socket. */
function ringThrough(line: BellLine, n: number, socketBytes: () => number): number {
  for (let i = 0; i < n; i++) line.ring();
  return socketBytes();
}

const ONE = new Uint8Array([1]);

/** Bytes a pipe takes before it is full, written one at a time: its capacity less what it holds. */
function roomIn(writeEnd: number): number {
  let n = 0;
  while (os.write(writeEnd, ONE) === 1) n++;
  return n;
}

test("an honest gate: the pipe's write end is taken at the next ring; every ring from then on goes through the pipe", () =>
  noFdLeft(async () => {
    const pipe = os.pipe();
    try {
      await withGate((conn) => os.sendPacket(conn, ONE, [pipe.write]), (line, socketBytes) => {
        assert.equal(line.kind, "socket");
        line.ring(); // takes the pipe, then writes to it
        assert.equal(line.kind, "pipe");
        line.ring();
        line.ring();
        assert.equal(socketBytes(), 0, "nothing through the socket");
        const empty = os.pipe();
        const capacity = roomIn(empty.write);
        os.close(empty.read);
        os.close(empty.write);
        assert.equal(roomIn(pipe.write), capacity - 3, "three bytes in the pipe");
        // Rings into a full pipe neither block nor fail.
        for (let i = 0; i < 10; i++) line.ring();
        assert.equal(line.kind, "pipe");
      });
    } finally {
      os.close(pipe.read);
      os.close(pipe.write);
    }
  }));

test("a blocking write end handed over is made nonblocking before it is used", () =>
  noFdLeft(async () => {
    const pipe = os.pipe();
    // As a hostile holder might send it: blocking (a full pipe would then block the waker).
    os.setFileFlags(pipe.write, os.fileFlags(pipe.write) & ~O_NONBLOCK);
    try {
      await withGate((conn) => os.sendPacket(conn, ONE, [pipe.write]), (line, socketBytes) => {
        line.ring();
        assert.equal(line.kind, "pipe");
        assert.notEqual(os.fileFlags(line.fd) & O_NONBLOCK, 0, "the line's end is nonblocking");
        assert.ok(roomIn(line.fd) > 0);
        for (let i = 0; i < 10; i++) line.ring(); // full: would block forever if blocking
        assert.equal(socketBytes(), 0);
      });
    } finally {
      os.close(pipe.read);
      os.close(pipe.write);
    }
  }));

/** Hostile answers: each must leave the line on the socket, with the fd closed. */
const HOSTILE: { what: string; answer: (conn: number, spare: { fds: number[] }) => void }[] = [
  {
    what: "a regular file (memfd)",
    answer: (conn, spare) => {
      const fd = os.memfdCreate("svmtest-not-a-pipe", 1);
      spare.fds.push(fd);
      os.sendPacket(conn, ONE, [fd]);
    },
  },
  {
    what: "a pipe's read end",
    answer: (conn, spare) => {
      const pipe = os.pipe();
      spare.fds.push(pipe.read, pipe.write);
      os.sendPacket(conn, ONE, [pipe.read]);
    },
  },
  {
    what: "a socket",
    answer: (conn, spare) => {
      const other = os.listenUnix(uniqueName("notapipe"), 1);
      spare.fds.push(other);
      os.sendPacket(conn, ONE, [other]);
    },
  },
  { what: "a packet without an fd", answer: (conn) => os.sendPacket(conn, ONE) },
  { what: "a closed connection", answer: () => {} },
];

for (const { what, answer } of HOSTILE) {
  test(`a gate that sends ${what}: the line rings on through the socket and keeps no fd of it`, () =>
    noFdLeft(async () => {
      const spare = { fds: [] as number[] };
      try {
        await withGate((conn) => answer(conn, spare), (line, socketBytes) => {
          assert.equal(ringThrough(line, 5, socketBytes), 5, "every ring went through the socket");
          assert.equal(line.kind, "socket");
        });
      } finally {
        for (const fd of spare.fds) os.close(fd);
      }
    }));
}

test("a gate that sends several fds: the first (a pipe's write end) is used, the others closed", () =>
  noFdLeft(async () => {
    const pipe = os.pipe();
    const file = os.memfdCreate("svmtest-extra", 1);
    try {
      await withGate((conn) => os.sendPacket(conn, ONE, [pipe.write, file, pipe.read]), (line, socketBytes) => {
        line.ring();
        assert.equal(line.kind, "pipe");
        assert.equal(socketBytes(), 0);
      });
    } finally {
      os.close(file);
      os.close(pipe.read);
      os.close(pipe.write);
    }
  }));

test("a gate that never answers is given up after 16 rings; the socket serves throughout", () =>
  noFdLeft(() => {
    const name = uniqueName("bell");
    const bell = os.listenUnix(name, 8);
    const gate = os.listenUnix(doorbellPipeGate(name), 8, "seqpacket");
    const line = BellLine.open(os, name, doorbellPipeGate(name)); // its gate connection waits in the backlog
    const conn = os.accept(bell);
    try {
      const withWaitingGate = openFds();
      for (let i = 0; i < 15; i++) line.ring();
      assert.equal(openFds(), withWaitingGate, "still asking");
      line.ring();
      assert.equal(openFds(), withWaitingGate - 1, "the gate connection was closed");
      for (let i = 0; i < 4; i++) line.ring();
      assert.equal(line.kind, "socket");
      let n = 0;
      for (let got = os.recvPacket(conn, new Uint8Array(64)); got !== null && got.length > 0;) {
        n += got.length;
        got = os.recvPacket(conn, new Uint8Array(64));
      }
      assert.equal(n, 20);
    } finally {
      line.close();
      os.close(conn);
      os.close(gate);
      os.close(bell);
    }
  }));

test("a doorbell without a gate (Bun's): the line stays on the socket", () =>
  noFdLeft(() => {
    const name = uniqueName("bell");
    const bell = os.listenUnix(name, 8);
    const line = BellLine.open(os, name, doorbellPipeGate(name));
    const conn = os.accept(bell);
    try {
      for (let i = 0; i < 3; i++) line.ring();
      assert.equal(line.kind, "socket");
      assert.equal(os.recvPacket(conn, new Uint8Array(64))?.length, 3);
    } finally {
      line.close();
      os.close(conn);
      os.close(bell);
    }
  }));

test("a pipe whose reader is gone: the ring fails with EPIPE (no SIGPIPE), and the process goes on", () =>
  noFdLeft(async () => {
    assert.ok(os.ignoresSigpipe(), "the runtime ignores SIGPIPE");
    const pipe = os.pipe();
    try {
      await withGate((conn) => os.sendPacket(conn, ONE, [pipe.write]), (line) => {
        line.ring();
        assert.equal(line.kind, "pipe");
        os.close(pipe.read); // the holder died
        pipe.read = -1;
        assert.throws(() => line.ring(), (e: unknown) => e instanceof OsError && e.code === "EPIPE");
      });
    } finally {
      if (pipe.read >= 0) os.close(pipe.read);
      os.close(pipe.write);
    }
  }));

test("hungUp tells a line whose doorbell is gone: a pipe without readers, a socket whose peer closed, a closed fd", () => {
  const pipe = os.pipe();
  const [a, b] = os.socketPair();
  try {
    assert.deepEqual(os.hungUp([pipe.write, a, b]), [false, false, false], "both ends open");
    os.close(pipe.read);
    os.close(b);
    assert.deepEqual(os.hungUp([pipe.write, a]), [true, true], "the other ends closed");
    assert.deepEqual(os.hungUp([]), []);
    assert.deepEqual(os.hungUp([pipe.write]), [true]);
  } finally {
    os.close(pipe.write);
    os.close(a);
  }
  assert.deepEqual(os.hungUp([2 ** 30]), [true], "an fd that is not open");
});
