/**
 * Web streams over a message ring: a ReadableStream of records (each one's type and a copy of its
 * payload) that sleeps until records are published, ends when the producer closed the ring and
 * everything was read, and errors when the producer aborted it or died ("aborted",
 * "peer-gone"); and a WritableStream that writes each chunk as one record, waiting for room,
 * whose close() closes the ring and whose abort() aborts it.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import type { MessageRing } from "./message_ring.ts";

/** One record of a message ring as its streams carry it: its type and its payload. */
export interface RingRecord {
  /** The record's type, 0 to 2^31 - 1. */
  readonly type: number;
  /** The payload: a copy in the readable stream's records. */
  readonly data: Uint8Array;
}

/** Records a pull may queue ahead of the reader (the count strategy's high-water mark). */
const AHEAD = 64;

/**
 * The records the consumer side of `ring` reads, as a stream. It reads ahead (up to AHEAD
 * records); an end that fails ("aborted", "peer-gone", "corrupt") is held back until the reader
 * has taken every record read before it, since erroring a web stream discards what it holds.
 */
export function readableOf(ring: MessageRing): ReadableStream<RingRecord> {
  // Cancelling the stream ends the wait its pending pull sleeps in.
  const cancelled = new AbortController();
  let queue: ReadableStreamDefaultController<RingRecord>;
  let failure: { error: unknown } | undefined;
  const take = (bytes: Uint8Array, at: number, length: number, type: number) => {
    queue.enqueue({ type, data: bytes.slice(at, at + length) });
  };
  return new ReadableStream<RingRecord>({
    cancel(reason) {
      cancelled.abort(reason);
    },
    async pull(controller) {
      queue = controller;
      for (;;) {
        if (failure !== undefined) {
          // The next pull comes after the reader takes a record; the last one finds none held.
          if (controller.desiredSize === AHEAD) throw failure.error;
          return;
        }
        // Closed is read before the records: the producer publishes its last ones, then closes.
        let closed: boolean;
        try {
          closed = ring.isClosed;
          if (ring.poll(take, Math.max(1, controller.desiredSize ?? 1)) > 0) return;
        } catch (error) {
          failure = { error }; // "corrupt" (after the records before the bad one), "freed", "deleted"
          continue;
        }
        if (closed) {
          if (!ring.isAborted) {
            controller.close(); // the records it holds are still read
            return;
          }
          failure = {
            error: new SegmentError(
              "aborted",
              `the producer of message ring at offset ${ring.offset} aborted the stream`,
            ),
          };
          continue;
        }
        try {
          await ring.waitForData({ signal: cancelled.signal });
        } catch (error) {
          if (cancelled.signal.aborted) return; // the stream is cancelled: nobody reads on
          failure = { error };
        }
      }
    },
  }, { highWaterMark: AHEAD });
}

/**
 * A stream that writes each chunk into `ring` as one record: a `Uint8Array` as type 0, a
 * {@link RingRecord} with its type. A write waits for room (back pressure); a chunk longer than
 * the ring's `maxMessage`, or a type out of range, fails the write with a RangeError.
 */
export function writableOf(ring: MessageRing): WritableStream<Uint8Array | RingRecord> {
  return new WritableStream<Uint8Array | RingRecord>({
    async write(chunk) {
      let data: unknown = chunk;
      let type: unknown = 0;
      if (!(chunk instanceof Uint8Array) && typeof chunk === "object" && chunk !== null) {
        data = chunk.data;
        type = chunk.type ?? 0;
      }
      if (!(data instanceof Uint8Array) || typeof type !== "number") {
        throw new TypeError("a message ring's writable takes Uint8Array or { type, data } chunks");
      }
      while (!ring.offer(data, type)) await ring.waitForSpace(data.length);
    },
    close() {
      ring.close();
    },
    abort() {
      if (ring.isLive) ring.abortStream(); // a ring already gone has no reader left to tell
    },
  });
}
