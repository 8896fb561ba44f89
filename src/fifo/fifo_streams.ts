/**
 * Web streams over a fifo: a byte ReadableStream that sleeps until data arrives, ends when the
 * producer closed the fifo, and errors when it aborted it or died ("aborted", "peer-gone"); and a
 * WritableStream whose writes wait for room (and, for a chunked fifo in a full segment, for
 * memory), and whose abort() aborts the fifo.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import type { Fifo } from "./fifo.ts";

/** The longest a writer of a chunked fifo waits before it looks for memory again. */
const MAX_MEMORY_PAUSE_MS = 50;

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      signal?.removeEventListener("abort", stopped);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stopped = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", stopped, { once: true });
  });
}

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
      let last = fifo.enqueue(chunk);
      let done = last;
      let stalls = 0;
      while (done < chunk.length) {
        if (last === 0 && fifo.chunked && fifo.maxEnqueue > 0) {
          // Room by size but no chunk to hold it: the segment's memory is all in use. Nothing
          // rings when some comes back (another fifo drains), so look again after a while.
          await pause(Math.min(2 ** stalls++, MAX_MEMORY_PAUSE_MS), stop);
        } else {
          stalls = 0;
          // Wake for a quarter of the fifo (or the rest), not for every byte the reader takes.
          await fifo.waitForSpace(Math.min(chunk.length - done, Math.max(1, fifo.size >> 2)), { signal: stop });
        }
        last = fifo.enqueue(chunk.subarray(done));
        done += last;
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
