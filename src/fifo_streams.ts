/**
 * Web streams over a fifo: a byte ReadableStream that sleeps until data arrives, ends when the
 * producer closed the fifo, and errors when it aborted it or died ("aborted", "peer-gone"); and a
 * WritableStream whose writes wait for room, and whose abort() aborts the fifo.
 *
 * @module
 */

import { SegmentError } from "./errors.ts";
import type { Fifo } from "./fifo.ts";

/** Bytes a read asks for when the reader brings no buffer of its own. */
const CHUNK = 64 * 1024;

/**
 * A byte stream of what the consumer side of `fifo` reads. `stop` (a connection's) ends it with
 * its reason, also while it sleeps.
 */
export function readableOf(fifo: Fifo, stop?: AbortSignal): ReadableStream<Uint8Array> {
  // Cancelling the stream ends the wait its pending pull sleeps in.
  const cancelled = new AbortController();
  const signal = stop ? AbortSignal.any([cancelled.signal, stop]) : cancelled.signal;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK,
    cancel(reason) {
      cancelled.abort(reason);
    },
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const into = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      for (;;) {
        stop?.throwIfAborted();
        // Closed is read before emptiness: the producer closes after its last write.
        const closed = fifo.isClosed;
        const n = fifo.dequeue(into);
        if (n > 0) {
          request.respond(n);
          return;
        }
        if (closed) {
          if (fifo.isAborted) {
            throw new SegmentError("aborted", `the producer of fifo at offset ${fifo.offset} aborted the stream`);
          }
          controller.close();
          request.respond(0);
          return;
        }
        try {
          await fifo.waitForData({ signal });
        } catch (error) {
          if (cancelled.signal.aborted) return; // the stream is cancelled: nobody reads on
          throw error;
        }
      }
    },
  });
}

/**
 * A stream that enqueues into `fifo`, waiting for room as needed. `stop` (a connection's) ends
 * its writes with its reason, also while they wait.
 */
export function writableOf(fifo: Fifo, stop?: AbortSignal): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError("a fifo's writable takes Uint8Array chunks");
      stop?.throwIfAborted();
      let done = fifo.enqueue(chunk);
      while (done < chunk.length) {
        // Wake for a quarter of the fifo (or the rest), not for every byte the reader takes.
        await fifo.waitForSpace(Math.min(chunk.length - done, Math.max(1, fifo.size >> 2)), { signal: stop });
        done += fifo.enqueue(chunk.subarray(done));
      }
    },
    close() {
      stop?.throwIfAborted();
      fifo.close();
    },
    abort() {
      if (fifo.isLive) fifo.abort(); // a fifo already gone has no reader left to tell
    },
  });
}
