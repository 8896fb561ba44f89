// A private segment is a SharedArrayBuffer: Workers of one process attach to it and stream
// through its fifos, sleeping with Atomics.wait instead of the kernel futex.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SegmentMain } from "../mod.ts";

const noWorker = typeof Worker === "undefined"
  ? "this runtime has no web Worker global (Node: use node:worker_threads)"
  : false;

/** The test Worker (`peers/private_worker.ts`), and the next message it posts. */
function startWorker() {
  const worker = new Worker(new URL("./peers/private_worker.ts", import.meta.url).href, { type: "module" });
  const messages: unknown[] = [];
  let notify = () => {};
  worker.onmessage = (event: MessageEvent) => {
    messages.push(event.data);
    notify();
  };
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((r) => (notify = r));
    return messages.shift();
  };
  return { worker, next };
}

test("a Worker attaches to a private segment and echoes 8 MiB back, sleeping between writes", {
  skip: noWorker,
}, async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "workers", size: 1 << 20 });
  const out = segment.allocFifo(16 * 1024, "tx")!;
  const back = segment.allocFifo(16 * 1024, "rx")!;
  const { worker, next } = startWorker();
  try {
    worker.postMessage({ buffer: segment.u8.buffer, inbound: out.offset, outbound: back.offset });
    assert.equal(await next(), "attached");
    const total = 8 << 20;
    const chunk = new Uint8Array(3000);
    const got = new Uint8Array(4096);
    let sent = 0;
    let received = 0;
    while (received < total) {
      if (sent < total) {
        for (let i = 0; i < chunk.length; i++) chunk[i] = (sent + i) & 0xff;
        sent += out.enqueue(chunk.subarray(0, Math.min(chunk.length, total - sent)));
        if (sent === total) out.close();
      }
      const n = back.dequeue(got);
      for (let i = 0; i < n; i++) if (got[i] !== ((received + i) & 0xff)) assert.fail(`byte ${received + i}`);
      received += n;
      if (n === 0 && !(await back.waitForData({ timeoutMs: 10_000 }))) assert.fail("the worker stopped echoing");
    }
    assert.deepEqual(await next(), { echoed: total });
    assert.equal(back.isClosed, true);
  } finally {
    worker.terminate();
  }
});

test("a Worker echoes message ring records back through the rings' streams, both sides asleep between records", {
  skip: noWorker,
}, async () => {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "private", name: "workers", size: 1 << 20 });
  const out = segment.allocMessageRing(4096)!;
  const back = segment.allocMessageRing(4096)!;
  const { worker, next } = startWorker();
  try {
    worker.postMessage({ buffer: segment.u8.buffer, inbound: out.offset, outbound: back.offset, rings: true });
    assert.equal(await next(), "attached");
    const count = 20_000; // a 4 KiB ring holds a few dozen: each side waits for the other, again and again
    const record = (i: number) => ({ type: i % 1000, data: new Uint8Array(i % 100).fill(i & 0xff) });
    const writing = (async () => {
      const writer = out.writable.getWriter();
      for (let i = 0; i < count; i++) await writer.write(record(i));
      await writer.close();
    })();
    let got = 0;
    for await (const { type, data } of back.readable) {
      const want = record(got++);
      if (type !== want.type || data.length !== want.data.length || data.some((b) => b !== (want.data[0] ?? 0))) {
        assert.fail(`record ${got - 1} came back wrong`);
      }
    }
    await writing;
    assert.equal(got, count);
    assert.deepEqual(await next(), { echoed: count });
  } finally {
    worker.terminate();
  }
});
