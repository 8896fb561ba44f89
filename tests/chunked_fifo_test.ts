// Chunked fifos (VPP's fifos of today): memory taken in chunks as data arrives and given back as
// it is read, from the segment's freelists. VPP's fifo_grow, fifo_shrink, segment_fifo_grow,
// prealloc and segment_manager pressure tests translated to this API; the books after a
// process died in the middle of taking or giving back a chunk; a stream between runtimes with
// out-of-order writes, every byte checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Fifo, type Segment, SegmentError, SegmentMain, waitAny, WaitSet } from "../mod.ts";
import {
  CHUNK_CLAIMED,
  CHUNK_FLAGS,
  CHUNK_KEPT,
  CHUNK_TABLE_STRIDE,
  chunkTableWord,
  FF_CLASS,
  FF_NEXT_FREE,
  FF_OWNER,
  FF_PRODUCER_HAND,
  FF_STATE,
  FIFO_HEADER_SIZE,
  FIFO_STATE_FREE,
  FS_FREELISTS,
  FS_JOURNAL_CHUNK,
  FS_JOURNAL_CLASS,
  FS_JOURNAL_OP,
  FS_JOURNAL_TARGET,
  FS_LOCK,
  JOURNAL_DROP,
  JOURNAL_GROW,
} from "../src/layout.ts";
import {
  OTHERS,
  pattern,
  patternByte,
  RUNTIME,
  SEED,
  shmEntries,
  startPeer,
  STREAM_MAX_IO,
  STREAM_PERIOD,
  uniqueName,
} from "./helpers.ts";
import { IDLE_MS } from "../src/fifo/fifo_chunks.ts";
import { consumeStream, produceStream } from "./peers/stream.ts";
import { chunkChurn } from "./peers/churn.ts";
import { streamWithPeer } from "./stream_pair.ts";

const KiB = 1024;
const CHUNK = 4096 + FIFO_HEADER_SIZE; // a 4 KiB chunk with its header
const LONG = process.env.SVM_LONG === "1";
const STRIDE = CHUNK_TABLE_STRIDE / 4; // words from one table word to the next

function privateSegment(size: number): { sm: SegmentMain; segment: Segment } {
  const sm = new SegmentMain();
  return { sm, segment: sm.create({ type: "private", name: uniqueName("chunked"), size }) };
}

const bytes = (n: number, at = 0) => pattern(new Uint8Array(n), at);

function readAll(fifo: Fifo, n: number, at: number): void {
  const out = new Uint8Array(n);
  assert.equal(fifo.dequeue(out), n);
  for (let i = 0; i < n; i++) if (out[i] !== patternByte(at + i)) assert.fail(`byte ${at + i}`);
}

test("fifo_grow: a chunk per 4 KiB written, through 16 chunks; setSize lets it grow to 18; all back on free", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const before = segment.memoryStatus();
  // VPP's rule: every chunk read past goes back at once (no spare chunks).
  const fifo = segment.allocFifo(64 * KiB, "rx", {
    chunked: true,
    chunkSize: 4096,
    maxSize: 72 * KiB,
    spareChunks: 0,
  })!;
  assert.equal(fifo.chunked, true);
  assert.equal(fifo.chunkSize, 4096);
  assert.equal(fifo.size, 64 * KiB);
  assert.equal(fifo.maxSize, 72 * KiB);
  assert.equal(fifo.chunkCount, 0, "no memory until the first write");
  for (let i = 1; i <= 16; i++) {
    assert.equal(fifo.enqueue(bytes(4096, (i - 1) * 4096)), 4096);
    assert.equal(fifo.chunkCount, i, `after ${i} writes of a chunk`);
  }
  assert.equal(fifo.maxEnqueue, 0, "full at its size");
  assert.equal(fifo.enqueue(bytes(1)), 0);
  fifo.setSize(72 * KiB);
  assert.equal(fifo.maxEnqueue, 8 * KiB);
  assert.equal(fifo.enqueue(bytes(8 * KiB, 64 * KiB)), 8 * KiB);
  assert.equal(fifo.chunkCount, 18);
  assert.equal(fifo.memoryBytes, 18 * 4096);
  assert.throws(() => fifo.setSize(72 * KiB + 1), RangeError);
  // Read back in order; every chunk read past goes back to the segment.
  for (let i = 0; i < 18; i++) {
    readAll(fifo, 4096, i * 4096);
    assert.equal(fifo.chunkCount, Math.max(1, 17 - i), `after reading ${i + 1} chunks`);
  }
  assert.equal(fifo.chunkCount, 1, "a drained fifo keeps one chunk");
  segment.freeFifo(fifo);
  const after = segment.memoryStatus();
  assert.equal(after.free + after.cached, before.free + before.cached, "every byte back on free");
  assert.deepEqual(segment.audit().lost, []);
});

test("fifo_shrink: setSize below what is stored gives a window of 0 until the reader drains below it", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(32 * KiB, "rx", { chunked: true, chunkSize: 4096, spareChunks: 0 })!;
  assert.equal(fifo.enqueue(bytes(20 * KiB)), 20 * KiB);
  assert.equal(fifo.chunkCount, 5);
  fifo.setSize(8 * KiB);
  assert.equal(fifo.size, 8 * KiB);
  assert.equal(fifo.maxEnqueue, 0, "20 KiB stored, size 8 KiB");
  assert.equal(fifo.enqueue(bytes(1)), 0);
  assert.equal(fifo.enqueueWithOffset(0, bytes(1)), false);
  assert.equal(fifo.maxDequeue, 20 * KiB, "nothing stored is lost");
  readAll(fifo, 12 * KiB, 0);
  assert.equal(fifo.chunkCount, 2);
  assert.equal(fifo.maxEnqueue, 0, "exactly the size stored");
  readAll(fifo, 4 * KiB, 12 * KiB);
  assert.equal(fifo.maxEnqueue, 4 * KiB);
  assert.equal(fifo.chunkCount, 1);
  fifo.setSize(32 * KiB);
  assert.equal(fifo.maxEnqueue, 28 * KiB);
  assert.throws(() => fifo.setSize(0), RangeError);
  const plain = segment.allocFifo(4096)!;
  assert.equal(plain.chunked, false);
  assert.equal(plain.chunkCount, 1);
  assert.throws(() => plain.setSize(100), TypeError, "a contiguous fifo's size is fixed");
});

test("segment_fifo_grow: growth past the segment's memory is partial or refused, and resumes when memory returns", async () => {
  const { sm, segment } = privateSegment(8192 + 16 * CHUNK + 8192); // headers' pages, a little fifo area
  using _ = sm;
  const fifo = segment.allocFifo(1 << 20, "rx", { chunked: true, chunkSize: 4096, spareChunks: 0 })!;
  const other = segment.allocFifo(4096)!; // a contiguous fifo takes chunks of the same class
  const room = segment.memoryStatus();
  const fit = Math.floor((room.free + room.cached) / CHUNK);
  assert.ok(fit > 2 && fit < 20, `room for ${fit} chunks`);
  const big = bytes(40 * 4096);
  const wrote = fifo.enqueue(big);
  assert.equal(wrote, fit * 4096, "partial: the chunks there were");
  assert.equal(fifo.maxEnqueue, (1 << 20) - wrote, "the size would allow more");
  assert.equal(fifo.enqueue(bytes(1)), 0, "refused: no chunk left");
  assert.equal(fifo.enqueueExact(bytes(10)), false);
  assert.equal(fifo.enqueueWithOffset(100, bytes(10)), false);
  assert.throws(() => fifo.enqueueNocopy(10), (e) => e instanceof SegmentError && e.code === "no-memory");
  assert.deepEqual(fifo.writeSegments(), [], "no chunk to write into");
  // A writer waits for memory; the other fifo's chunk comes back and the write completes.
  const writer = fifo.writable.getWriter();
  const written = writer.write(bytes(4096, wrote));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fifo.maxDequeue, wrote, "still waiting");
  segment.freeFifo(other);
  await written;
  assert.equal(fifo.maxDequeue, wrote + 4096);
  writer.releaseLock();
  for (let at = 0; at < wrote + 4096; at += 4096) readAll(fifo, 4096, at);
  assert.equal(fifo.chunkCount, 1);
  assert.deepEqual(segment.audit().lost, []);
});

test("prealloc: chunks carved ahead with exact accounting, then used without carving", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const before = segment.memoryStatus();
  assert.equal(segment.preallocateChunks(4096, 10), 0);
  const after = segment.memoryStatus();
  assert.equal(after.free, before.free - 10 * CHUNK, "carved from free");
  assert.equal(after.cached, before.cached + 10 * CHUNK, "onto the freelists");
  assert.equal(segment.numFreeFifos(4096), 10);
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!; // its header: one more chunk
  const withHeader = segment.memoryStatus();
  assert.equal(fifo.enqueue(bytes(8 * 4096)), 8 * 4096);
  assert.equal(segment.memoryStatus().free, withHeader.free, "the chunks came from the freelist");
  assert.equal(segment.memoryStatus().cached, withHeader.cached - 8 * CHUNK);
  assert.throws(() => segment.preallocateChunks(5000, 1), RangeError);
  assert.throws(() => segment.preallocateChunks(8 << 20, 1), RangeError);
  const small = privateSegment(8192 + 4 * CHUNK);
  using _small = small.sm;
  assert.equal(small.segment.preallocateChunks(4096, 10), 6, "only 4 fit");
});

test("segment_manager pressure: none -> low -> high as a chunked fifo fills, and back as it drains", () => {
  const size = 8 << 20;
  const { sm, segment } = privateSegment(size);
  using _ = sm;
  // VPP's rule (no spare chunks): memory follows what is stored at every read.
  const fifo = segment.allocFifo(7 << 20, "rx", { chunked: true, chunkSize: 64 * KiB, spareChunks: 0 })!;
  const step = bytes(64 * KiB);
  let stored = 0;
  const fillTo = (percent: number) => {
    while (segment.memoryStatus().usedPercent < percent) stored += fifo.enqueue(step);
  };
  const seen: string[] = [];
  for (const percent of [12, 44, 61, 85]) {
    fillTo(percent);
    const status = segment.memoryStatus();
    assert.ok(status.usedPercent < percent + 2, `${status.usedPercent}% for ${percent}%`);
    seen.push(status.pressure);
  }
  assert.deepEqual(seen, ["none", "none", "low", "high"]);
  const drained: string[] = [];
  for (const percent of [61, 44, 12]) {
    while (segment.memoryStatus().usedPercent > percent) stored -= fifo.dequeueDrop(64 * KiB);
    drained.push(segment.memoryStatus().pressure);
  }
  assert.deepEqual(drained, ["low", "none", "none"]);
  fifo.dequeueDropAll();
  assert.ok(segment.memoryStatus().usedPercent < 2, "one chunk and the header left");
});

test("memory follows the fill level: 1000 idle chunked fifos hold a header each, contiguous ones their whole ring", () => {
  const { sm, segment } = privateSegment(80 << 20);
  using _ = sm;
  const base = segment.memoryStatus();
  const used = () => segment.size - segment.memoryStatus().free - segment.memoryStatus().cached;
  const chunked = Array.from({ length: 1000 }, () => segment.allocFifo(64 * KiB, "rx", { chunked: true })!);
  const chunkedBytes = used() - (base.size - base.free - base.cached);
  for (const f of chunked) segment.freeFifo(f);
  const contiguous = Array.from({ length: 1000 }, () => segment.allocFifo(64 * KiB, "rx")!);
  const contiguousBytes = used() - (base.size - base.free - base.cached);
  assert.ok(chunkedBytes <= 1000 * CHUNK, `${chunkedBytes} bytes for 1000 idle chunked fifos`);
  assert.ok(contiguousBytes >= 1000 * 64 * KiB, `${contiguousBytes} bytes for 1000 contiguous ones`);
  for (const f of contiguous) segment.freeFifo(f);
});

test("waits and streams work on a chunked fifo: 8 MiB through readable and writable, memory back to one chunk", async () => {
  const { sm, segment } = privateSegment(4 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(256 * KiB, "rx", { chunked: true, chunkSize: 16 * KiB })!;
  const total = 8 << 20;
  const writing = (async () => {
    const writer = fifo.writable.getWriter();
    for (let at = 0; at < total; at += 50_000) await writer.write(bytes(Math.min(50_000, total - at), at));
    await writer.close();
  })();
  let read = 0;
  for await (const chunk of fifo.readable) {
    for (let i = 0; i < chunk.length; i++) if (chunk[i] !== patternByte(read + i)) assert.fail(`byte ${read + i}`);
    read += chunk.length;
    assert.ok(fifo.chunkCount <= 256 / 16 + 1);
  }
  await writing;
  assert.equal(read, total);
  assert.equal(fifo.chunkCount, 1);
  assert.equal(await fifo.waitForSpace(256 * KiB, { timeoutMs: 100 }), true);
});

test("a framed reader's fresh read (connections' receive) across chunk ends and the ring's end: every byte, one head move", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(16 * KiB, "rx", { chunked: true, chunkSize: 4 * KiB })!;
  let written = 0;
  let read = 0;
  for (let i = 0; i < 400; i++) {
    const skip = i % 9;
    const n = (i * 613) % 5000; // up to more than a chunk
    assert.ok(fifo.enqueueExact(bytes(skip + n, written)));
    written += skip + n;
    const out = fifo.dequeueFresh(skip, n);
    assert.ok(out !== null);
    for (let j = 0; j < n; j++) if (out[j] !== patternByte(read + skip + j)) assert.fail(`read ${i}, byte ${j}`);
    read += skip + n;
    assert.equal(fifo.maxDequeue, 0, "header and payload both removed");
  }
  assert.ok(fifo.enqueueExact(bytes(10, written)));
  assert.equal(fifo.dequeueFresh(4, 7), null, "fewer readable than asked: nothing removed");
  assert.equal(fifo.maxDequeue, 10);
});

test("a table word that points outside the segment is a typed error, and nothing moves", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  fifo.enqueue(bytes(6000));
  const word = chunkTableWord(fifo.offset, 1);
  const good = segment.u32[word];
  segment.u32[word] = segment.size - 100; // slot 1 now "ends" past the segment
  const out = new Uint8Array(6000);
  assert.throws(() => fifo.dequeue(out), (e) => e instanceof SegmentError && e.code === "corrupt");
  assert.equal(fifo.maxDequeue, 6000, "nothing was consumed");
  segment.u32[word] = 0; // live bytes with no chunk
  assert.throws(() => fifo.peek(0, out), (e) => e instanceof SegmentError && e.code === "corrupt");
  segment.u32[word] = good;
  readAll(fifo, 6000, 0);
});

// A dead holder's journal: a private segment's only live tag is 1, so 0x1234 is dead.
const DEAD = 0x1234;

function deadHolderLeft(segment: Segment, op: number, chunk: number, target: number): void {
  const u32 = segment.u32;
  u32[FS_JOURNAL_TARGET >>> 2] = target;
  u32[FS_JOURNAL_CHUNK >>> 2] = chunk;
  u32[FS_JOURNAL_CLASS >>> 2] = u32[(chunk + FF_CLASS) >>> 2];
  u32[FS_JOURNAL_OP >>> 2] = op;
  u32[FS_LOCK >>> 2] = DEAD;
}

function oneChunkFifo(): { sm: SegmentMain; segment: Segment; fifo: Fifo; word: number; chunk: number } {
  const { sm, segment } = privateSegment(1 << 20);
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  fifo.enqueue(bytes(100));
  const word = chunkTableWord(fifo.offset, 0) << 2;
  return { sm, segment, fifo, word, chunk: segment.u32[word >>> 2] };
}

test("a process killed in a grow before the chunk reached the table: the chunk goes back to its list", () => {
  const { sm, segment, fifo, word, chunk } = oneChunkFifo();
  using _ = sm;
  segment.u32[word >>> 2] = 0; // popped and made live by the dead holder, never stored
  segment.u32[(chunk + FF_OWNER) >>> 2] = DEAD;
  deadHolderLeft(segment, JOURNAL_GROW, chunk, word);
  assert.deepEqual(segment.audit().lost, [], "recovered under the lock the audit takes");
  assert.equal(segment.u32[(chunk + FF_STATE) >>> 2], FIFO_STATE_FREE);
  assert.equal(fifo.chunkCount, 0);
});

test("a process killed in a grow after the chunk reached the table: the grow stands", () => {
  const { sm, segment, fifo, word, chunk } = oneChunkFifo();
  using _ = sm;
  segment.u32[(chunk + FF_OWNER) >>> 2] = DEAD;
  deadHolderLeft(segment, JOURNAL_GROW, chunk, word);
  assert.deepEqual(segment.audit().lost, []);
  assert.equal(fifo.chunkCount, 1);
  readAll(fifo, 100, 0);
});

test("a process killed in a drop, before or after the chunk reached its list: dropped once, the word cleared", () => {
  for (const listed of [false, true]) {
    const { sm, segment, fifo, word, chunk } = oneChunkFifo();
    using _ = sm;
    fifo.dequeueDropAll();
    if (listed) {
      // Made free and pushed by the dead holder; its table word not cleared yet.
      const u32 = segment.u32;
      const head = (FS_FREELISTS >>> 2) + u32[(chunk + FF_CLASS) >>> 2];
      u32[(chunk + FF_STATE) >>> 2] = FIFO_STATE_FREE;
      u32[(chunk + FF_NEXT_FREE) >>> 2] = u32[head];
      u32[head] = chunk;
    }
    deadHolderLeft(segment, JOURNAL_DROP, chunk, word);
    assert.deepEqual(segment.audit().lost, [], listed ? "on its list once" : "put on its list");
    assert.equal(segment.u32[word >>> 2], 0);
    assert.equal(fifo.chunkCount, 0);
    assert.equal(fifo.enqueue(bytes(5000)), 5000, "and the fifo goes on");
  }
});

// With the default spare chunks (all the ring: chunks change hands in place) and with one (the
// reader gives back every other chunk while the writer claims them: both sides race on the table).
for (const other of OTHERS) {
  for (
    const [direction, spareChunks] of [["produce", undefined], ["consume", undefined], ["produce", 1], [
      "consume",
      1,
    ]] as const
  ) {
    const producer = direction === "produce" ? RUNTIME : other;
    const consumer = direction === "produce" ? other : RUNTIME;
    const total = (LONG ? 1024 : 128) * 2 ** 20;
    const spares = spareChunks === undefined ? "default spares" : `${spareChunks} spare`;
    test(`chunked: ${producer} -> ${consumer}, ${total / 2 ** 20} MiB, ${spares}, random sizes, out-of-order writes, every byte checked`, async () => {
      const name = uniqueName("chunked-stream");
      using sm = new SegmentMain();
      const segment = sm.create({ type: "shm", name, size: 4 << 20 });
      const fifo = segment.allocFifo(1_000_000, "rx", { chunked: true, chunkSize: 16 * KiB, spareChunks })!;
      const seed = SEED + 4321;
      const iProduce = direction === "produce";
      const args = [
        iProduce ? "consume" : "produce-ooo",
        "shm",
        name,
        String(fifo.offset),
        String(total),
        String(seed),
      ];
      const { produced, consumed } = await streamWithPeer(
        other,
        args,
        iProduce,
        (table, alive) =>
          iProduce
            ? produceStream(fifo, total, seed, table, alive, true)
            : consumeStream(fifo, total, seed, table, alive),
      );
      assert.equal(produced.bytes, total);
      assert.ok(produced.ooo > total / STREAM_MAX_IO / 2, `${produced.ooo} out-of-order writes`);
      assert.deepEqual(
        { bytes: consumed.bytes, bad: consumed.bad, firstBad: consumed.firstBad, left: consumed.left },
        { bytes: total, bad: 0, firstBad: -1, left: 0 },
      );
      assert.ok(fifo.chunkCount <= 1 + fifo.spareChunks, "drained: one chunk and the spares");
      // The reader's side waits on the drained fifo: its spare chunks go back (and when the
      // producer was the peer, which has exited, the wait ends with "peer-gone").
      if (iProduce) assert.equal(fifo.waitForDataSync({ timeoutMs: 0 }), false);
      else {
        assert.throws(
          () => fifo.waitForDataSync({ timeoutMs: 0 }),
          (e) => e instanceof SegmentError && e.code === "peer-gone",
        );
      }
      assert.equal(fifo.chunkCount, 1, "drained and waited on: one chunk");
      assert.deepEqual(segment.audit().lost, []);
      sm.delete(segment);
      assert.deepEqual(shmEntries(name), []);
    });
  }
}

// The reader sleeps whenever the fifo is empty, and each time it gives its spare chunks back
// while the writer, another runtime's process, claims them: both sides' claims race.
for (const other of OTHERS) {
  const total = (LONG ? 512 : 64) * 2 ** 20;
  test(`chunked: ${other} -> ${RUNTIME}, the reader sleeps when empty and gives its spares back each time, ${total / 2 ** 20} MiB, every byte checked`, async () => {
    const name = uniqueName("chunked-sleeper");
    using sm = new SegmentMain();
    const segment = sm.create({ type: "shm", name, size: 4 << 20 });
    const fifo = segment.allocFifo(1_000_000, "rx", { chunked: true, chunkSize: 16 * KiB })!;
    const args = ["produce-ooo", "shm", name, String(fifo.offset), String(total), "99"];
    const { produced, consumed } = await streamWithPeer(other, args, false, (table) => {
      const buf = new Uint8Array(STREAM_MAX_IO);
      let received = 0;
      let bad = 0;
      let waits = 0;
      while (received < total) {
        const n = fifo.dequeue(buf.subarray(0, Math.min(buf.length, total - received)));
        if (n === 0) {
          waits++;
          fifo.waitForDataSync({ timeoutMs: 1000 });
          continue;
        }
        const base = received % STREAM_PERIOD;
        for (let i = 0; i < n; i++) if (buf[i] !== table[base + i]) bad++;
        received += n;
      }
      return { bytes: received, bad, waits };
    });
    assert.equal(produced.bytes, total);
    assert.deepEqual({ bytes: consumed.bytes, bad: consumed.bad }, { bytes: total, bad: 0 });
    assert.ok(consumed.waits > 0, "the reader slept");
    assert.ok(fifo.chunkCount <= 1 + fifo.spareChunks);
    assert.deepEqual(segment.audit().lost, []);
    sm.delete(segment);
    assert.deepEqual(shmEntries(name), []);
  });
}

test(`SIGKILL mid-grow: ${OTHERS.join(" and ")} processes killed while their chunked fifos grow and shrink; the books balance`, async () => {
  const name = uniqueName("chunk-kill");
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 16 << 20 });
  const rounds = LONG ? 60 : 12;
  for (let round = 0; round < rounds; round++) {
    const victim = startPeer(OTHERS[round % OTHERS.length], "alloc_peer", [
      "chunk-churn",
      "shm",
      name,
      String(round + 1),
    ]);
    try {
      await victim.line(/^RUNNING/);
      // This process churns its own chunked fifos beside the victim, then the victim dies.
      const mine = chunkChurn(segment, 300 + round * 37, 100 + round);
      assert.equal(mine.bad, 0, `round ${round}`);
      victim.kill("SIGKILL");
      assert.equal((await victim.done).signal, "SIGKILL");
    } finally {
      victim.kill();
      await victim.done;
    }
    assert.deepEqual(segment.audit().lost, [], `round ${round}: every chunk in one table word, a hand, or on its list`);
  }
  // The dead processes' fifos are orphans; freeing them gives every chunk back.
  for (const orphan of segment.orphanedFifos()) segment.freeFifo(orphan);
  const books = segment.audit();
  assert.deepEqual(books.lost, []);
  assert.equal(books.live, 0, "nothing live is left");
  assert.equal(segment.info().fifoChunks, 0);
  const after = chunkChurn(segment, 2000, 7);
  assert.equal(after.bad, 0, "the segment works on");
  sm.delete(segment);
  assert.deepEqual(shmEntries(name), []);
});

test("a drained fifo's kept chunk moves to the next slot when writing resumes, with no freelist traffic", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  const table = chunkTableWord(fifo.offset, 0);
  fifo.enqueue(bytes(4096));
  readAll(fifo, 4096, 0); // drained exactly at the end of slot 0: its chunk is kept
  const kept = segment.u32[table] & ~CHUNK_FLAGS;
  assert.notEqual(kept, 0);
  assert.equal(segment.u32[table] & CHUNK_FLAGS, CHUNK_KEPT, "marked for the producer");
  const free = segment.numFreeFifos(4096);
  fifo.enqueue(bytes(100, 4096));
  assert.equal(segment.u32[table + STRIDE], kept, "the same chunk, now in slot 1");
  assert.equal(segment.u32[table], 0);
  assert.equal(segment.numFreeFifos(4096), free, "nothing taken from or given to the freelist");
  readAll(fifo, 100, 4096);
});

test("a fifo that runs nearly full settles: once every slot has a chunk, each is claimed in place, lap after lap", () => {
  // A writer one chunk behind its reader: the empty slot it needs is the one right before the
  // reader's kept chunk. Moving that chunk would empty the very next slot it writes, and so on
  // forever; it takes one chunk from the segment instead, and then nothing moves.
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  const slots = fifo.maxSize / 4096 + 1;
  const table = chunkTableWord(fifo.offset, 0);
  const chunks = () => Array.from({ length: slots }, (_, s) => segment.u32[table + s * STRIDE] & ~CHUNK_FLAGS);
  let written = 0;
  let read = 0;
  assert.equal(fifo.enqueue(bytes(64 * KiB)), 64 * KiB);
  written += 64 * KiB;
  const step = () => {
    readAll(fifo, 4096, read);
    read += 4096;
    assert.equal(fifo.enqueue(bytes(4096, written)), 4096);
    written += 4096;
  };
  for (let i = 0; i < 2 * slots; i++) step();
  const settled = chunks();
  const free = segment.numFreeFifos(4096);
  assert.equal(fifo.chunkCount, slots, "every slot has a chunk");
  for (let i = 0; i < 3 * slots; i++) step();
  assert.deepEqual(chunks(), settled, "each slot kept its chunk");
  assert.equal(segment.numFreeFifos(4096), free, "nothing taken from or given to the segment");
  readAll(fifo, written - read, read);
  assert.deepEqual(segment.audit().lost, []);
});

test("a fifo that runs nearly full in a segment with no chunk left moves its reader's kept chunk after all", () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  assert.equal(fifo.enqueue(bytes(64 * KiB)), 64 * KiB);
  const fillers: Fifo[] = [];
  for (let f = segment.allocFifo(4096); f !== null; f = segment.allocFifo(4096)) fillers.push(f);
  assert.equal(fifo.chunkCount, 16);
  let read = 0;
  let written = 64 * KiB;
  for (let i = 0; i < 40; i++) {
    readAll(fifo, 4096, read);
    read += 4096;
    assert.equal(fifo.enqueue(bytes(4096, written)), 4096, `write ${i}: a kept chunk serves`);
    written += 4096;
  }
  assert.equal(fifo.chunkCount, 16, "no chunk came from the segment");
  readAll(fifo, written - read, read);
  for (const f of fillers) segment.freeFifo(f);
  assert.deepEqual(segment.audit().lost, []);
});

test("spare chunks: a reader that follows a writer leaves K chunks in place, which the writer reuses without the freelists; a drain gives them back", () => {
  for (const spare of [1, 3]) {
    const { sm, segment } = privateSegment(1 << 20);
    using _ = sm;
    const fifo = segment.allocFifo(32 * KiB, "rx", { chunked: true, chunkSize: 4096, spareChunks: spare })!;
    assert.equal(fifo.spareChunks, spare);
    assert.match(fifo.toString(), new RegExp(`${spare} spare`));
    const table = chunkTableWord(fifo.offset, 0);
    const slots = fifo.maxSize / 4096 + 1;
    // Fill, then read one chunk at a time: the last `spare` slots read stay, marked, the rest go.
    assert.equal(fifo.enqueue(bytes(32 * KiB)), 32 * KiB);
    let at = 0;
    for (let i = 1; i <= 6; i++, at += 4096) {
      readAll(fifo, 4096, at);
      assert.equal(fifo.chunkCount, 8 - i + Math.min(i, spare), `after reading ${i} chunks`);
      let kept = 0;
      for (let s = 0; s < slots; s++) if (segment.u32[table + s * STRIDE] & CHUNK_KEPT) kept++;
      assert.equal(kept, Math.min(i, spare));
    }
    // The writer follows one chunk behind: the kept chunks move to the slots it writes (those
    // more than it needs go back while the reader passes them), then nothing more from the lists.
    let free = 0;
    let wrote = 32 * KiB;
    for (let round = 0; round < 40; round++) {
      if (round === 8) free = segment.numFreeFifos(4096);
      assert.equal(fifo.enqueue(bytes(4096, wrote)), 4096);
      wrote += 4096;
      readAll(fifo, 4096, at);
      at += 4096;
      assert.ok(fifo.chunkCount <= fifo.maxDequeue / 4096 + 1 + spare, `round ${round}: ${fifo.chunkCount} chunks`);
    }
    assert.equal(segment.numFreeFifos(4096), free, "no freelist traffic while data flows");
    // Drained, the spares stay until the reader waits on the empty fifo; then one chunk is left.
    readAll(fifo, wrote - at, at);
    assert.ok(fifo.chunkCount <= 1 + spare);
    assert.equal(fifo.waitForDataSync({ timeoutMs: 0 }), false);
    assert.equal(fifo.chunkCount, 1, "drained and waited on: one chunk");
    assert.deepEqual(segment.audit().lost, []);
    segment.freeFifo(fifo);
    assert.equal(segment.info().fifoChunks, 0);
  }
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  assert.throws(() => segment.allocFifo(4096, "rx", { chunked: true, spareChunks: -1 }), RangeError);
  assert.throws(() => segment.allocFifo(4096, "rx", { chunked: true, spareChunks: 65 }), RangeError);
  assert.throws(() => segment.allocFifo(4096, "rx", { chunked: true, spareChunks: 1.5 }), RangeError);
});

/** A fifo whose reader left slot 0's chunk kept (drained at its end); returns that chunk. */
function keptChunkFifo(
  spareChunks = 1,
): { sm: SegmentMain; segment: Segment; fifo: Fifo; table: number; chunk: number } {
  const { sm, segment } = privateSegment(1 << 20);
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096, spareChunks })!;
  fifo.enqueue(bytes(4096));
  readAll(fifo, 4096, 0);
  const table = chunkTableWord(fifo.offset, 0);
  assert.equal(segment.u32[table] & CHUNK_FLAGS, CHUNK_KEPT);
  return { sm, segment, fifo, table, chunk: segment.u32[table] & ~CHUNK_FLAGS };
}

/** What a producer that died in a move left: slot 0's kept chunk in its hand, claimed (the word cleared). Returns the hand's index. */
function diedMoving(segment: Segment, fifo: Fifo, table: number, chunk: number): number {
  const hand = (fifo.offset + FF_PRODUCER_HAND) >>> 2;
  segment.u32[hand] = chunk;
  segment.u32[table] = 0;
  return hand;
}

test("a producer killed in a move with the chunk only in its hand: the next producer step gives it back", () => {
  const { sm, segment, fifo, table, chunk } = keptChunkFifo();
  using _ = sm;
  const hand = diedMoving(segment, fifo, table, chunk);
  assert.deepEqual(segment.audit().lost, [], "in the hand: still the fifo's");
  assert.equal(fifo.chunkCount, 0);
  const free = segment.numFreeFifos(4096);
  assert.equal(fifo.enqueue(bytes(100, 4096)), 100);
  assert.equal(segment.u32[hand], 0, "the hand settled");
  assert.equal(fifo.chunkCount, 1);
  assert.equal(segment.numFreeFifos(4096), free, "the chunk went back to its list, and one came off it");
  assert.deepEqual(segment.audit().lost, []);
  readAll(fifo, 100, 4096);
});

test("a producer killed in a move after the chunk reached its new slot: the hand is cleared, the chunk stays", () => {
  const { sm, segment, fifo, table, chunk } = keptChunkFifo();
  using _ = sm;
  const hand = diedMoving(segment, fifo, table, chunk);
  segment.u32[table + STRIDE] = chunk; // moved into slot 1, the hand not yet cleared
  assert.deepEqual(segment.audit().lost, []);
  const free = segment.numFreeFifos(4096);
  assert.equal(fifo.enqueue(bytes(5000, 4096)), 5000, "into slot 1, and slot 2 needs a chunk");
  assert.equal(segment.u32[hand], 0, "settled by the step that took a chunk");
  assert.equal(segment.u32[table + STRIDE], chunk, "the write went into the moved chunk");
  assert.equal(segment.numFreeFifos(4096), free - 1, "one chunk taken, for slot 2; none given back");
  readAll(fifo, 5000, 4096);
  assert.deepEqual(segment.audit().lost, []);
});

test("a chunk left in a dead producer's hand goes back when the fifo is freed", () => {
  const { sm, segment, fifo, table, chunk } = keptChunkFifo();
  using _ = sm;
  diedMoving(segment, fifo, table, chunk);
  segment.freeFifo(fifo);
  const books = segment.audit();
  assert.deepEqual(books.lost, []);
  assert.equal(books.live, 0);
  assert.equal(segment.info().fifoChunks, 0);
});

test("a consumer killed after claiming a kept chunk: the producer takes it back, or the free gives it back", () => {
  for (const then of ["write", "free"] as const) {
    // Two spare chunks, so that the live consumer below leaves slot 0 alone.
    const { sm, segment, fifo, table, chunk } = keptChunkFifo(2);
    using _ = sm;
    // Claimed (KEPT -> CLAIMED) by a consumer that died before it gave the chunk back.
    segment.u32[table] = chunk | CHUNK_CLAIMED;
    assert.deepEqual(segment.audit().lost, []);
    if (then === "write") {
      assert.equal(fifo.enqueue(bytes(64 * KiB, 4096)), 64 * KiB, "slots 1 .. 16");
      readAll(fifo, 4096, 4096);
      assert.equal(segment.u32[table], chunk | CHUNK_CLAIMED, "two slots behind the head: within the spares");
      const free = segment.numFreeFifos(4096);
      assert.equal(fifo.enqueue(bytes(4096, 68 * KiB)), 4096, "wraps into slot 0");
      assert.equal(segment.u32[table], chunk, "slot 0's chunk taken back, nothing from the lists");
      assert.equal(segment.numFreeFifos(4096), free);
      readAll(fifo, 64 * KiB, 8 * KiB);
      assert.equal(fifo.waitForDataSync({ timeoutMs: 0 }), false);
      assert.equal(fifo.chunkCount, 1);
    } else {
      segment.freeFifo(fifo);
      assert.equal(segment.info().fifoChunks, 0);
    }
    assert.deepEqual(segment.audit().lost, []);
  }
});

test(`spare chunks go back when the reader finds its drained fifo empty for ${IDLE_MS} ms (not after a hiccup), or waits on it`, async () => {
  const { sm, segment } = privateSegment(1 << 20);
  using _ = sm;
  const fifo = segment.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  assert.equal(fifo.spareChunks, 16, "by default all the slots behind the head (up to 64)");
  const fill = () => {
    assert.equal(fifo.enqueue(bytes(40 * KiB)), 40 * KiB);
    readAll(fifo, 40 * KiB, 0);
  };
  fill();
  assert.equal(fifo.chunkCount, 10, "the chunks it needed, kept for the writer");
  const empty = new Uint8Array(10);
  assert.equal(fifo.dequeue(empty), 0, "empty: the reader starts counting");
  assert.equal(fifo.chunkCount, 10);
  const start = performance.now();
  while (performance.now() - start < 5) assert.equal(fifo.dequeue(empty), 0);
  assert.equal(fifo.chunkCount, 10, "empty for a moment (a writer's hiccup): the chunks stay");
  while (performance.now() - start < IDLE_MS + 5) assert.equal(fifo.dequeue(empty), 0);
  // The reader reads the clock at one empty look in 16: sixteen more, so that a process descheduled in the loop above
  // (a loaded machine) still has a look past the idle time.
  for (let i = 0; i < 16; i++) assert.equal(fifo.dequeue(empty), 0);
  assert.equal(fifo.chunkCount, 1, `empty for ${IDLE_MS} ms: one chunk left`);
  // Data in between starts the count again; a wait gives them back at once.
  fill();
  assert.equal(fifo.chunkCount, 10);
  assert.equal(await fifo.waitForData({ timeoutMs: 1 }), false);
  assert.equal(fifo.chunkCount, 1);
  fill();
  const any = await waitAny([fifo], { timeoutMs: 1 });
  assert.deepEqual(any, []);
  assert.equal(fifo.chunkCount, 1, "waitAny waits as the reader too");
  using set = new WaitSet([fifo]);
  fill();
  assert.equal(fifo.chunkCount, 10);
  assert.deepEqual(await set.wait({ timeoutMs: 1 }), []);
  assert.equal(fifo.chunkCount, 1, "so does a WaitSet, at each wait that finds it empty");
  // The same through a mapped segment's WaitSet, which keeps its members registered.
  using shmMain = new SegmentMain();
  const shm = shmMain.create({ type: "shm", name: uniqueName("chunked-set"), size: 1 << 20 });
  const mapped = shm.allocFifo(64 * KiB, "rx", { chunked: true, chunkSize: 4096 })!;
  using mappedSet = new WaitSet([mapped]);
  assert.equal(mapped.enqueue(bytes(40 * KiB)), 40 * KiB);
  readAll(mapped, 40 * KiB, 0);
  assert.equal(mapped.chunkCount, 10);
  assert.deepEqual(await mappedSet.wait({ timeoutMs: 1 }), []);
  assert.equal(mapped.chunkCount, 1, "a mapped segment's WaitSet too");
  assert.deepEqual(segment.audit().lost, []);
});
