// Segments across processes and runtimes: one process creates and writes, a process of each
// other runtime attaches and reads, for shm and memfd, in both directions (so, run under all
// three runtimes, every pair of Deno, Bun and Node both ways).
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentMain } from "../mod.ts";
import { PROC_LOCK_BASE } from "../src/layout.ts";
import { expectSuccess, OTHER, OTHERS, RUNTIME, shmEntries, startPeer, uniqueName } from "./helpers.ts";
import { pattern, patternByte } from "./helpers.ts";

const GREETING_TAG = 0xc0ffee;
const ACK_TAG = 2;

for (const [type, other] of (["shm", "memfd"] as const).flatMap((t) => OTHERS.map((o) => [t, o] as const))) {
  test(`${type}: ${RUNTIME} creates and writes, ${other} attaches and reads`, async () => {
    const name = uniqueName(`x-${type}`);
    using sm = new SegmentMain();
    const seg = sm.create({ type, name, size: 1 << 20 });
    const fifo = seg.allocFifo(64 * 1024, "tx")!;
    fifo.tag = GREETING_TAG;
    const greeting = new TextEncoder().encode(`hello from ${RUNTIME}`);
    fifo.enqueue(new Uint8Array([greeting.length]));
    fifo.enqueue(greeting);
    fifo.enqueue(pattern(new Uint8Array(32 * 1024), 0, 7));
    seg.allocFifo(16, "rx")!.tag = ACK_TAG;
    const target = type === "shm" ? name : `${process.pid}:${seg.info().fd}`;
    const peer = startPeer(other, "segment_peer", ["attach", type, target]);
    const result = await peer.done;
    expectSuccess(result, "attaching peer");
    const saw = JSON.parse(result.stdout.split("SAW ")[1]);
    assert.deepEqual(saw, {
      greeting: `hello from ${RUNTIME}`,
      bytes: 32 * 1024,
      bad: 0,
      left: 0,
      creatorPid: process.pid,
      type,
      runtime: other,
    });
    const ack = seg.fifos().find((f) => f.tag === ACK_TAG)!;
    const ok = new Uint8Array(2);
    assert.equal(ack.dequeue(ok), 2);
    assert.equal(new TextDecoder().decode(ok), "ok");
    assert.equal(fifo.maxDequeue, 0, "the reader consumed everything");
    sm.delete(seg);
    assert.deepEqual(shmEntries(name), []);
  });

  test(`${type}: ${other} creates and writes, ${RUNTIME} attaches and reads`, async () => {
    const name = uniqueName(`y-${type}`);
    const peer = startPeer(other, "segment_peer", ["create", type, name]);
    try {
      const ready = JSON.parse((await peer.line(/^READY /)).slice(6));
      assert.equal(ready.runtime, other);
      using sm = new SegmentMain({ timeoutSeconds: 10 });
      const seg = type === "shm" ? sm.attach({ type, name }) : sm.attach({ type, pid: ready.pid, fd: ready.fd });
      assert.equal(seg.creatorPid, ready.pid);
      assert.equal(seg.createdHere, false);
      assert.equal(seg.name, name);
      const fifos = seg.fifos();
      assert.equal(fifos.length, 2);
      const fifo = fifos.find((f) => f.tag === GREETING_TAG)!;
      const len = new Uint8Array(1);
      fifo.dequeue(len);
      const greeting = new Uint8Array(len[0]);
      fifo.dequeue(greeting);
      assert.equal(new TextDecoder().decode(greeting), `hello from ${other} ${ready.pid}`);
      const data = new Uint8Array(32 * 1024);
      assert.equal(fifo.dequeue(data), data.length);
      for (let i = 0; i < data.length; i++) if (data[i] !== patternByte(i, 7)) assert.fail(`byte ${i}`);
      fifos.find((f) => f.tag === ACK_TAG)!.enqueue(new TextEncoder().encode("ok"));
      expectSuccess(await peer.done, "creating peer");
    } finally {
      peer.kill();
      await peer.done;
    }
    assert.deepEqual(shmEntries(name), [], "the creator unlinked its segment");
  });
}

test(`attach waits (asleep) for a ${OTHER} creator that sets ready late`, async () => {
  const name = uniqueName("slow");
  const peer = startPeer(OTHER, "segment_peer", ["slow-create", name, "400"]);
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  try {
    await peer.line(/^OPENED/);
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    const seg = sm.attach({ type: "shm", name });
    const waited = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    assert.equal(seg.size, 1 << 16);
    assert.equal(seg.name, name);
    assert.ok(waited > 200, `attach returned after ${waited} ms, before the creator was ready`);
    assert.ok((cpu.user + cpu.system) / 1000 < waited / 2, "attach slept instead of spinning");
    expectSuccess(await peer.done, "slow creator");
  } finally {
    peer.kill();
    await peer.done;
    try {
      sm.os.shmUnlink(`/${name}`);
    } catch { /* never created */ }
  }
  assert.deepEqual(shmEntries(name), []);
});

test(`attachAsync: the event loop runs while a ${OTHER} creator finishes, and errors arrive as rejections`, async () => {
  const name = uniqueName("slow-async");
  const peer = startPeer(OTHER, "segment_peer", ["slow-create", name, "400"]);
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  try {
    await peer.line(/^OPENED/);
    const seg = await sm.attachAsync({ type: "shm", name });
    assert.equal(seg.size, 1 << 16);
    assert.ok(ticks >= 10, `only ${ticks} timer ticks ran while attaching`);
    expectSuccess(await peer.done, "slow creator");
    await assert.rejects(sm.attachAsync({ type: "shm", name: uniqueName("none") }), {
      name: "OsError",
      code: "ENOENT",
    });
    using quick = new SegmentMain({ timeoutSeconds: 0.1 });
    const fd = quick.os.shmOpen(`/${name}-never`, 0o302, 0o600);
    try {
      quick.os.lockByte(fd, PROC_LOCK_BASE); // a creator that lives but never finishes
      quick.os.ftruncate(fd, 8192);
      await assert.rejects(quick.attachAsync({ type: "shm", name: `${name}-never` }), {
        name: "SegmentError",
        code: "timeout",
      });
      assert.equal(quick.size, 0);
    } finally {
      quick.os.close(fd);
      quick.os.shmUnlink(`/${name}-never`);
    }
  } finally {
    clearInterval(timer);
    peer.kill();
    await peer.done;
    try {
      sm.os.shmUnlink(`/${name}`);
    } catch { /* never created */ }
  }
  assert.deepEqual(shmEntries(name), []);
});
