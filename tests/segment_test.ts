// Segments in one process: create, attach, delete, the pool, info and toString, dispose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { PAGE_SIZE, Segment, SegmentError, SegmentMain } from "../mod.ts";
import { RUNTIME, shmEntries, uniqueName } from "./helpers.ts";
import { PROC_LOCK_BASE } from "../src/layout.ts";

test("shm: create rounds the size to pages, attach from a second main sees the same bytes", () => {
  const name = uniqueName("shm");
  using creator = new SegmentMain();
  using attacher = new SegmentMain();
  const seg = creator.create({ type: "shm", name, size: 100_000 });
  assert.equal(seg.size, 25 * PAGE_SIZE);
  assert.equal(statSync(`/dev/shm/${name}`).size, 25 * PAGE_SIZE);
  assert.equal(statSync(`/dev/shm/${name}`).mode & 0o777, 0o600);
  const other = attacher.attach({ type: "shm", name });
  assert.equal(other.size, seg.size);
  assert.equal(other.createdHere, false);
  assert.equal(other.creatorPid, seg.creatorPid);
  const fifo = seg.allocFifo(4096, "tx")!;
  fifo.enqueue(new Uint8Array([1, 2, 3]));
  const seen = other.fifoAt(fifo.offset);
  const out = new Uint8Array(8);
  assert.equal(seen.dequeue(out), 3);
  assert.deepEqual([...out.subarray(0, 3)], [1, 2, 3]);
  attacher.delete(other);
  assert.deepEqual(shmEntries(name), [name], "an attacher's delete only unmaps");
  creator.delete(seg);
  assert.deepEqual(shmEntries(name), [], "the creator's delete unlinks the name");
});

test("memfd: sealed against resize, attachable by fd and by /proc/pid/fd", () => {
  using sm = new SegmentMain();
  using other = new SegmentMain();
  const seg = sm.create({ type: "memfd", name: uniqueName("memfd"), size: 3 * PAGE_SIZE });
  const info = seg.info();
  assert.equal(info.type, "memfd");
  assert.equal(typeof info.fd, "number");
  const seals = sm.os.getSeals(info.fd!);
  assert.equal(seals & 0b111, 0b111, "F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW");
  assert.throws(() => sm.os.ftruncate(info.fd!, PAGE_SIZE), { name: "OsError", code: "EPERM" });
  const byFd = other.attach({ type: "memfd", fd: info.fd! });
  const byProc = other.attach({ type: "memfd", pid: seg.creatorPid, fd: info.fd! });
  assert.equal(byFd.size, seg.size);
  assert.equal(byProc.name, seg.name);
  other.delete(byFd);
  other.delete(byProc);
  sm.delete(seg);
  assert.throws(() => sm.os.fstat(info.fd!), { code: "EBADF" }, "the creator's delete closes the memfd");
});

test("private: backed by a SharedArrayBuffer, attachable by that buffer", () => {
  using sm = new SegmentMain({ os: undefined });
  const seg = sm.create({ type: "private", name: uniqueName("private"), size: 10_000 });
  assert.equal(seg.type, "private");
  assert.equal(seg.size, 3 * PAGE_SIZE);
  assert.ok(seg.u8.buffer instanceof SharedArrayBuffer);
  const again = sm.attach({ type: "private", buffer: seg.u8.buffer as SharedArrayBuffer });
  assert.equal(again.name, seg.name);
  assert.equal(sm.size, 2);
});

test("the pool: indices, get, indexOf, iteration, size, reuse of freed indices", () => {
  using sm = new SegmentMain();
  const a = sm.create({ type: "private", name: "a", size: PAGE_SIZE * 2 });
  const b = sm.create({ type: "shm", name: uniqueName("pool"), size: PAGE_SIZE * 2 });
  const c = sm.create({ type: "memfd", name: "c", size: PAGE_SIZE * 2 });
  assert.deepEqual([a.index, b.index, c.index], [0, 1, 2]);
  assert.equal(sm.get(1), b);
  assert.equal(sm.get(7), undefined);
  assert.equal(sm.get(-1), undefined);
  assert.equal(sm.indexOf(c), 2);
  assert.deepEqual([...sm], [a, b, c]);
  assert.equal(sm.size, 3);
  sm.delete(b);
  assert.equal(sm.size, 2);
  assert.equal(sm.indexOf(b), -1);
  assert.equal(sm.get(1), undefined);
  assert.deepEqual([...sm], [a, c]);
  const d = sm.create({ type: "private", name: "d", size: PAGE_SIZE * 2 });
  assert.equal(d.index, 1, "a freed index is reused");
});

test("two mains in one process are independent", () => {
  const name = uniqueName("two");
  const one = new SegmentMain();
  const two = new SegmentMain();
  try {
    const seg = one.create({ type: "shm", name, size: 8192 });
    const att = two.attach({ type: "shm", name });
    assert.equal(one.size, 1);
    assert.equal(two.size, 1);
    assert.equal(one.indexOf(att), -1);
    assert.throws(() => one.delete(att), (e: unknown) => e instanceof SegmentError && e.code === "not-in-main");
    two[Symbol.dispose]();
    assert.equal(two.size, 0);
    assert.equal(one.size, 1);
    assert.equal(seg.deleted, false);
    assert.deepEqual(shmEntries(name), [name]);
  } finally {
    one[Symbol.dispose]();
  }
  assert.deepEqual(shmEntries(name), []);
});

test("info and toString", () => {
  const name = uniqueName("info");
  using sm = new SegmentMain();
  const seg = sm.create({ type: "shm", name, size: 1 << 20 });
  const info = seg.info();
  assert.equal(info.type, "shm");
  assert.equal(info.name, name);
  assert.equal(info.size, 1 << 20);
  assert.equal(info.creatorPid, sm.os.getpid());
  assert.equal(info.createdHere, true);
  assert.equal(info.index, 0);
  assert.equal(info.activeFifos, 0);
  const text = seg.toString();
  assert.match(text, new RegExp(`^\\[0\\] ${name} \\(shm\\) 1 MiB, creator pid ${info.creatorPid} \\(this process\\)`));
  assert.match(text, /0 active fifos/);
  for (const type of ["memfd", "private"] as const) {
    assert.match(sm.create({ type, name: `t-${type}`, size: 12288 }).toString(), new RegExp(`\\(${type}\\) 12 KiB`));
  }
});

test("delete: stale views are detached (zero pages in Deno) and fifos throw; nothing touches unmapped memory", () => {
  using sm = new SegmentMain();
  const seg = sm.create({ type: "shm", name: uniqueName("stale"), size: 1 << 16 });
  const fifo = seg.allocFifo(100)!;
  const view = seg.u32;
  assert.notEqual(Atomics.load(view, 0), 0, "the segment's magic");
  sm.delete(seg);
  assert.equal(seg.deleted, true);
  if (RUNTIME === "deno") {
    // Deno's FFI buffers are not detached (a detached one crashes its garbage collector later):
    // the range holds private zero pages until the buffer is collected.
    assert.equal(view.length, (1 << 16) / 4);
    assert.equal(Atomics.load(view, 0), 0, "zero pages, not the segment");
    Atomics.store(view, 1, 7); // a private page: nobody else sees it
  } else {
    assert.equal(view.length, 0, "the view is detached");
    assert.throws(() => Atomics.load(view, 0), TypeError);
  }
  assert.throws(
    () => fifo.enqueue(new Uint8Array(1)),
    (e: unknown) => e instanceof SegmentError && e.code === "deleted",
  );
  assert.throws(() => seg.allocFifo(100), (e: unknown) => e instanceof SegmentError && e.code === "deleted");
  assert.throws(() => seg.info(), (e: unknown) => e instanceof SegmentError && e.code === "deleted");
  assert.throws(() => sm.delete(seg), (e: unknown) => e instanceof SegmentError && e.code === "deleted");
  assert.match(seg.toString(), /deleted/);
});

test("using: a main and a segment clean up at the end of their scope", () => {
  const name = uniqueName("using");
  const name2 = uniqueName("using2");
  {
    using sm = new SegmentMain();
    sm.create({ type: "shm", name, size: 8192 });
    {
      using seg = sm.create({ type: "shm", name: name2, size: 8192 });
      assert.ok(seg instanceof Segment);
      assert.deepEqual(shmEntries(name2), [name2]);
    }
    assert.deepEqual(shmEntries(name2), []);
    assert.equal(sm.size, 1);
  }
  assert.deepEqual(shmEntries(name), []);
});

/**
 * CPU time of this thread (the main one, whose id is the pid), in ms, from /proc: utime and stime
 * in clock ticks of 10 ms. Not the process's: a runtime's collector and compiler threads may be
 * busy with what earlier tests left while this thread sleeps.
 */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // from the state field on
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

test("attach gives up after timeoutSeconds on a creator that never sets ready, sleeping meanwhile", async () => {
  const name = uniqueName("late");
  using sm = new SegmentMain({ timeoutSeconds: 0.3 });
  const os = sm.os;
  const fd = os.shmOpen(`/${name}`, 0o302, 0o600);
  try {
    os.lockByte(fd, PROC_LOCK_BASE); // a creator that lives but never finishes
    os.ftruncate(fd, 8192);
    const start = performance.now();
    const cpuStart = mainThreadCpuMs();
    assert.throws(
      () => sm.attach({ type: "shm", name }),
      (e: unknown) => e instanceof SegmentError && e.code === "timeout" && e.message.includes(name),
    );
    const elapsed = performance.now() - start;
    const cpu = mainThreadCpuMs() - cpuStart;
    assert.ok(elapsed >= 290 && elapsed < 2000, `waited ${elapsed} ms`);
    assert.ok(cpu < elapsed / 2, `attach slept (this thread's cpu ${cpu} ms of ${elapsed})`);
    assert.equal(sm.size, 0);
  } finally {
    os.close(fd);
    os.shmUnlink(`/${name}`);
  }
  await Promise.resolve();
});

test("a SegmentMain disposed while attachAsync waits for a creator rejects it with 'deleted' at once; create and attach after dispose are refused", async () => {
  const name = uniqueName("disposed");
  const holder = new SegmentMain();
  const os = holder.os;
  const fd = os.shmOpen(`/${name}`, 0o302, 0o600);
  try {
    os.lockByte(fd, PROC_LOCK_BASE); // a creator that lives but never finishes
    os.ftruncate(fd, 8192);
    const sm = new SegmentMain({ timeoutSeconds: 5 });
    const attaching = sm.attachAsync({ type: "shm", name });
    await new Promise((r) => setTimeout(r, 50));
    sm[Symbol.dispose]();
    const outcome = await Promise.race([
      attaching.then(() => "attached", (error) => error),
      new Promise((r) => setTimeout(() => r("pending"), 500)),
    ]);
    assert.ok(outcome instanceof SegmentError && outcome.code === "deleted", String(outcome));
    assert.equal(sm.size, 0);
    const deleted = (e: unknown) => e instanceof SegmentError && e.code === "deleted";
    assert.throws(() => sm.create({ type: "shm", name: uniqueName("after"), size: 1 << 20 }), deleted);
    assert.throws(() => sm.create({ type: "private", name: "after", size: 1 << 20 }), deleted);
    assert.throws(() => sm.attach({ type: "shm", name }), deleted);
    await assert.rejects(sm.attachAsync({ type: "shm", name }), deleted);
    assert.equal(sm.size, 0);
  } finally {
    os.close(fd);
    os.shmUnlink(`/${name}`);
    holder[Symbol.dispose]();
  }
});

test("creatorAlive: true for a live creator of any type, seen from the creator and from an attacher", () => {
  using sm = new SegmentMain();
  const priv = sm.create({ type: "private", name: "alive", size: 1 << 16 });
  assert.equal(priv.creatorAlive, true);
  assert.equal(sm.attach({ type: "private", buffer: priv.u8.buffer as SharedArrayBuffer }).creatorAlive, true);
  const name = uniqueName("alive");
  const shm = sm.create({ type: "shm", name, size: 1 << 16 });
  using other = new SegmentMain();
  assert.equal(shm.creatorAlive, true);
  assert.equal(other.attach({ type: "shm", name }).creatorAlive, true);
  const memfd = sm.create({ type: "memfd", name: "alive", size: 1 << 16 });
  assert.equal(memfd.creatorAlive, true);
});

test("memoryStatus: pressure moves none -> low -> high as fifos are allocated, and back as they are freed", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "pressure", size: 1 << 20 });
  const start = segment.memoryStatus();
  assert.equal(start.size, 1 << 20);
  assert.equal(start.cached, 0);
  assert.equal(start.free, (1 << 20) - 8192, "only the two header pages are used");
  assert.equal(start.pressure, "none");
  assert.ok(Math.abs(start.usedPercent - 0.78125) < 1e-9, `${start.usedPercent}`);
  const fifos = [];
  const seen: string[] = [];
  for (let fifo; (fifo = segment.allocFifo(60_000)) !== null;) {
    fifos.push(fifo);
    const m = segment.memoryStatus();
    assert.equal(m.usedPercent, ((m.size - m.free - m.cached) * 100) / m.size);
    assert.equal(m.pressure, m.usedPercent >= 80 ? "high" : m.usedPercent >= 50 ? "low" : "none");
    if (seen.at(-1) !== m.pressure) seen.push(m.pressure);
  }
  assert.deepEqual(seen, ["none", "low", "high"]);
  const full = segment.memoryStatus();
  assert.ok(full.free < 65_792, "no room for another fifo");
  for (const fifo of fifos.splice(0, fifos.length - 3)) segment.freeFifo(fifo);
  const after = segment.memoryStatus();
  assert.equal(after.free, full.free, "freed chunks are cached, not returned to the bump");
  assert.ok(after.cached > 0);
  assert.equal(after.pressure, "none");
  assert.match(segment.toString(), /memory: .* used of 1 MiB \(\d+\.\d%; .* free, .* cached\), pressure none/);
  assert.equal(segment.info().freeBytes, after.free + after.cached);
});

test("memoryStatus: watermarks are this handle's, settable and checked", () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "marks", size: 1 << 20 });
  segment.allocFifo(200_000); // a 256 KiB chunk: about 26% with the headers
  assert.equal(segment.memoryStatus().pressure, "none");
  segment.memoryWatermarks = { lowPercent: 10, highPercent: 20 };
  assert.equal(segment.memoryStatus().pressure, "high");
  segment.memoryWatermarks = { lowPercent: 10, highPercent: 90 };
  assert.equal(segment.memoryStatus().pressure, "low");
  for (
    const bad of [
      { lowPercent: 60, highPercent: 50 },
      { lowPercent: -1, highPercent: 50 },
      { lowPercent: 1, highPercent: 101 },
      { lowPercent: NaN, highPercent: 50 },
      null,
    ]
  ) {
    assert.throws(() => (segment.memoryWatermarks = bad as never), RangeError);
  }
  assert.deepEqual(segment.memoryWatermarks, { lowPercent: 10, highPercent: 90 }, "unchanged by bad values");
});
