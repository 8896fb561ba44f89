// A Worker of the test process: attaches to a private segment by its SharedArrayBuffer, sleeps
// until the main thread writes, and echoes the bytes back through a second fifo; or, given
// `rings`, echoes the records of one message ring into another through their streams.
import { SegmentMain } from "../../mod.ts";

const scope = globalThis as unknown as {
  onmessage:
    | ((event: { data: { buffer: SharedArrayBuffer; inbound: number; outbound: number; rings?: boolean } }) => void)
    | null;
  postMessage(message: unknown): void;
};
scope.onmessage = ({ data }) => {
  const sm = new SegmentMain();
  const segment = sm.attach({ type: "private", buffer: data.buffer });
  if (data.rings) {
    // Asleep in Atomics.waitAsync between records, on both rings.
    const inbound = segment.messageRingAt(data.inbound);
    const outbound = segment.messageRingAt(data.outbound);
    scope.postMessage("attached");
    let echoed = 0;
    inbound.readable.pipeThrough(
      new TransformStream({
        transform(record, controller) {
          echoed++;
          controller.enqueue(record);
        },
      }),
    ).pipeTo(outbound.writable).then(() => {
      sm[Symbol.dispose]();
      scope.postMessage({ echoed });
    }, (error) => scope.postMessage({ error: String(error) }));
    return;
  }
  const inbound = segment.fifoAt(data.inbound);
  const outbound = segment.fifoAt(data.outbound);
  scope.postMessage("attached");
  const buf = new Uint8Array(1024);
  let echoed = 0;
  // Blocking waits are fine in a Worker: Atomics.wait on the SharedArrayBuffer.
  while (inbound.waitForDataSync({ timeoutMs: 10_000 })) {
    const n = inbound.dequeue(buf);
    if (n === 0 && inbound.isClosed) break;
    let done = 0;
    while (done < n) {
      done += outbound.enqueue(buf.subarray(done, n));
      if (done < n) outbound.waitForSpaceSync(1, { timeoutMs: 10_000 });
    }
    echoed += n;
  }
  outbound.close();
  sm[Symbol.dispose]();
  scope.postMessage({ echoed });
};
