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

/**
 * The most a read takes at once when the reader brings no buffer of its own. Such a read gets a
 * new array of exactly what is readable up to this: a consumer that keeps small chunks keeps no
 * spare memory behind them, and a fast stream pays for one allocation per megabyte rather than
 * one per 64 KiB (in Deno and Node a new 64 KiB array, zeroed and faulted in, costs more than
 * copying the bytes into it).
 */
const MAX_CHUNK = 1 << 20;

/** What a default read looks with when the fifo is empty (a chunked fifo's spares go back then). */
const NOTHING = new Uint8Array(0);

/**
 * A byte stream of what the consumer side of `fifo` reads. A default reader gets new arrays; a
 * BYOB reader's buffer is filled in place. `stop` (a connection's) ends it with its reason, also
 * while it sleeps.
 */
export function readableOf(fifo: Fifo, stop?: AbortSignal): ReadableStream<Uint8Array> {
  // Cancelling the stream ends the wait its pending pull sleeps in.
  const cancelled = new AbortController();
  const signal = stop ? AbortSignal.any([cancelled.signal, stop]) : cancelled.signal;
  return new ReadableStream({
    type: "bytes",
    cancel(reason) {
      cancelled.abort(reason);
    },
    async pull(controller) {
      // A BYOB read brings its view; a default read none (no autoAllocateChunkSize).
      const request = controller.byobRequest;
      const view = request?.view;
      const into = view ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : null;
      for (;;) {
        stop?.throwIfAborted();
        // Closed is read before emptiness: the producer closes after its last write.
        const closed = fifo.isClosed;
        if (into !== null) {
          const n = fifo.dequeue(into);
          if (n > 0) return request!.respond(n);
        } else {
          const readable = fifo.maxDequeue;
          if (readable > 0) {
            // Null only if the tail went back (a hostile peer): then it is as if nothing came.
            const out = fifo.dequeueFresh(0, Math.min(readable, MAX_CHUNK));
            if (out !== null) return controller.enqueue(out);
          } else fifo.dequeue(NOTHING); // the empty look by which a chunked fifo gives back its spares
        }
        if (closed) {
          if (fifo.isAborted) {
            throw new SegmentError("aborted", `the producer of fifo at offset ${fifo.offset} aborted the stream`);
          }
          controller.close();
          request?.respond(0);
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
