// A message ring's web streams: records with their types through `readable` and `writable`, in
// order, with back pressure; the end of the stream (close, abort); bad chunks; and a peer in the
// other runtime killed at either end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type MessageRing, type RingRecord, SegmentMain } from "../mod.ts";
import { FIFO_HEADER_SIZE, RG_RECORDS } from "../src/layout.ts";
import { isCode, OTHER, shmEntries, startPeer, uniqueName } from "./helpers.ts";
import { checkRecord } from "./peers/ring_records.ts";

/**
 * A shm segment named `name` with two rings, and a way to make more, deleted at the end of `body`,
 * also when it fails.
 */
async function withRings(
  capacity: number,
  body: (a: MessageRing, b: MessageRing, name: string, more: () => MessageRing) => Promise<void>,
) {
  const name = uniqueName("ringstream");
  const sm = new SegmentMain();
  try {
    const segment = sm.create({ type: "shm", name, size: 4 << 20 });
    const more = () => segment.allocMessageRing(capacity)!;
    await body(more(), more(), name, more);
  } finally {
    sm[Symbol.dispose]();
  }
  assert.deepEqual(shmEntries(name), []);
}

/** Every record of `stream`, in order, until it ends. */
async function readAll(stream: ReadableStream<RingRecord>): Promise<[number, number[]][]> {
  const out: [number, number[]][] = [];
  for await (const { type, data } of stream) out.push([type, [...data]]);
  return out;
}

test("records and their types through writable and readable, in order, past the ring's capacity; close ends the stream", async () => {
  await withRings(1024, async (ring) => {
    const sent: [number, number[]][] = [];
    for (let i = 0; i < 500; i++) {
      const data = Array.from({ length: i % 200 }, (_, k) => (i + k) & 0xff);
      sent.push([i % 3 === 0 ? 0 : i, data]);
    }
    // 500 records of up to 200 B through a 1 KiB ring: the writer waits for room again and again.
    const writing = (async () => {
      const writer = ring.writable.getWriter();
      for (const [type, data] of sent) {
        await writer.write(type === 0 ? new Uint8Array(data) : { type, data: new Uint8Array(data) });
      }
      await writer.close();
    })();
    const got = await readAll(ring.readable);
    await writing;
    assert.deepEqual(got, sent);
    assert.equal(ring.isClosed, true);
    assert.equal(ring.isAborted, false);
  });
});

test("pipeTo from one ring to another keeps every record and its type", async () => {
  await withRings(4096, async (a, b) => {
    const writer = a.writable.getWriter();
    const piping = a.readable.pipeTo(b.writable);
    const sent: [number, number[]][] = [];
    for (let i = 0; i < 300; i++) {
      sent.push([i * 7, [i & 0xff, 1, 2]]);
      await writer.write({ type: i * 7, data: new Uint8Array([i & 0xff, 1, 2]) });
    }
    await writer.close();
    assert.deepEqual(await readAll(b.readable), sent);
    await piping;
  });
});

test("writable.abort(): the reader gets every record written before it, then SegmentError aborted", async () => {
  await withRings(4096, async (ring) => {
    const writer = ring.writable.getWriter();
    await writer.write(new Uint8Array([1]));
    await writer.write({ type: 5, data: new Uint8Array([2, 3]) });
    await writer.abort(new Error("given up"));
    assert.equal(ring.isAborted, true);
    const reader = ring.readable.getReader();
    assert.deepEqual((await reader.read()).value, { type: 0, data: new Uint8Array([1]) });
    assert.deepEqual((await reader.read()).value, { type: 5, data: new Uint8Array([2, 3]) });
    await assert.rejects(reader.read(), isCode("aborted"));
  });
});

test("a bad chunk fails its write and writes nothing: too long, a type out of range, not bytes", async () => {
  await withRings(1024, async (first, _b, _name, more) => {
    for (
      const [chunk, error] of [
        [new Uint8Array(first.maxMessage + 1), RangeError],
        [{ type: -1, data: new Uint8Array(1) }, RangeError],
        [{ type: 2 ** 31, data: new Uint8Array(1) }, RangeError],
        ["text", TypeError],
        [{ type: 1, data: [1, 2] }, TypeError],
        [{ type: "1", data: new Uint8Array(1) }, TypeError],
        [null, TypeError],
      ] as const
    ) {
      const ring = more();
      await assert.rejects(ring.writable.getWriter().write(chunk as unknown as Uint8Array), error, String(chunk));
      // The stream is errored (as a web stream is after a failed write); the ring is not.
      assert.equal(ring.isClosed, false);
      assert.equal(ring.offer(new Uint8Array([9]), 3), true);
      ring.publish();
      const seen: number[] = [];
      ring.poll((_bytes, _at, _length, type) => seen.push(type));
      assert.deepEqual(seen, [3], "nothing of the bad chunk was written");
    }
  });
});

test("a corrupted record header: the readable gives the records before it, then SegmentError corrupt", async () => {
  await withRings(1024, async (ring) => {
    const stream = ring.readable; // reads ahead before anyone reads
    ring.offer(new Uint8Array([1]), 1);
    ring.offer(new Uint8Array([2]), 2);
    ring.offer(new Uint8Array([3]), 3);
    ring.publish();
    const u32 = new Uint32Array(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.byteLength >>> 2);
    u32[(ring.offset + FIFO_HEADER_SIZE + RG_RECORDS + 32) >>> 2] = 5000; // the third record's size
    await new Promise((r) => setTimeout(r, 20));
    const types: number[] = [];
    let error: unknown;
    try {
      for await (const { type } of stream) types.push(type);
    } catch (e) {
      error = e;
    }
    assert.deepEqual(types, [1, 2]);
    assert.ok(isCode("corrupt")(error), `ended with ${error}`);
  });
});

test("cancelling the readable ends a pull asleep on an empty ring", async () => {
  await withRings(1024, async (ring) => {
    const reader = ring.readable.getReader();
    const read = reader.read();
    await new Promise((r) => setTimeout(r, 20));
    await reader.cancel("done");
    assert.deepEqual(await read, { done: true, value: undefined });
  });
});

test(`a ${OTHER} producer writing through ring.writable, killed: every record arrives whole, in order, then peer-gone within a second`, async () => {
  await withRings(1 << 16, async (ring, _b, name) => {
    const writer = startPeer(OTHER, "ring_peer", ["stream-produce", name, String(ring.offset), "1e9", "close"]);
    try {
      let got = 0;
      let bad = 0;
      let killed = 0;
      let written = 0;
      let error: unknown;
      try {
        for await (const { type, data } of ring.readable) {
          if (!checkRecord(data, 0, data.length, type, got, ring.maxMessage)) bad++;
          if (++got === 5000) {
            writer.kill("SIGKILL");
            // The peer printed "WROTE n" after its nth write resolved, its records published by then.
            const { stdout } = await writer.done;
            written = Math.max(...[...stdout.matchAll(/WROTE (\d+)/g)].map((m) => Number(m[1])));
            killed = performance.now();
          }
        }
      } catch (e) {
        error = e;
      }
      const took = performance.now() - killed;
      assert.ok(isCode("peer-gone")(error), `ended with ${error}`);
      assert.ok(killed > 0 && took < 1000, `peer-gone after ${took.toFixed(0)} ms`);
      assert.equal(bad, 0, `every one of ${got} records as written`);
      assert.ok(got >= written, `every record published before the kill arrived: ${got} of at least ${written}`);
    } finally {
      writer.kill("SIGKILL");
    }
  });
});

test(`records the readable holds when it learns of a ${OTHER} producer's death are read before the error`, async () => {
  await withRings(1 << 16, async (ring, _b, name) => {
    const writer = startPeer(OTHER, "ring_peer", ["stream-produce", name, String(ring.offset), "30", "hang"]);
    try {
      const stream = ring.readable; // reads ahead (up to its high-water mark) before anyone reads
      await writer.line(/^WROTE 30$/);
      writer.kill("SIGKILL");
      await writer.done;
      await new Promise((r) => setTimeout(r, 1500)); // its pull finds the ring empty and the peer dead
      let got = 0;
      let bad = 0;
      let error: unknown;
      try {
        for await (const { type, data } of stream) {
          if (!checkRecord(data, 0, data.length, type, got++, ring.maxMessage)) bad++;
        }
      } catch (e) {
        error = e;
      }
      assert.equal(got, 30, "every record, then the error");
      assert.equal(bad, 0);
      assert.ok(isCode("peer-gone")(error), `ended with ${error}`);
    } finally {
      writer.kill("SIGKILL");
    }
  });
});

test(`a ${OTHER} producer aborts ring.writable: its records arrive, then the readable errors with aborted`, async () => {
  await withRings(1 << 16, async (ring, _b, name) => {
    const writer = startPeer(OTHER, "ring_peer", ["stream-produce", name, String(ring.offset), "3000", "abort"]);
    try {
      let got = 0;
      let bad = 0;
      let error: unknown;
      try {
        for await (const { type, data } of ring.readable) {
          if (!checkRecord(data, 0, data.length, type, got++, ring.maxMessage)) bad++;
        }
      } catch (e) {
        error = e;
      }
      assert.ok(isCode("aborted")(error), `ended with ${error}`);
      assert.equal(got, 3000);
      assert.equal(bad, 0);
    } finally {
      writer.kill("SIGKILL");
    }
  });
});

test(`a ${OTHER} consumer reading ring.readable, killed: the writer's write ends with peer-gone within a second`, async () => {
  await withRings(1 << 16, async (ring, _b, name) => {
    const reader = startPeer(OTHER, "ring_peer", ["stream-consume", name, String(ring.offset), "1000"]);
    try {
      const writer = ring.writable.getWriter();
      const record = new Uint8Array(100);
      for (let i = 0; i < 1000; i++) await writer.write(record);
      await reader.line(/^READ 1000/);
      reader.kill("SIGKILL");
      await reader.done;
      const killed = performance.now();
      let error: unknown;
      try {
        for (;;) await writer.write(record); // fills what the dead reader left, then waits
      } catch (e) {
        error = e;
      }
      const took = performance.now() - killed;
      assert.ok(isCode("peer-gone")(error), `ended with ${error}`);
      assert.ok(took < 1000, `peer-gone after ${took.toFixed(0)} ms`);
    } finally {
      reader.kill("SIGKILL");
    }
  });
});
