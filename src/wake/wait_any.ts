/**
 * `waitAny`: one sleep over many fifos, for a server with thousands of clients. The fifos of one
 * segment share one pending wait (one entry per fifo in this process's tables, woken by an event
 * naming the fifo); fifos of several segments race one wait per segment.
 *
 * @module
 */

import { Fifo, type WaitOptions } from "../fifo/fifo.ts";
import { MessageRing } from "../ring/message_ring.ts";
import { checkSleepOptions, type Sleeper, type Watch } from "./sleeper.ts";

/**
 * Waits until at least one of `fifos` (fifos or message rings) has data, was closed (or aborted), or lost its producer
 * (its process died), and resolves with those fifos; with an empty array on timeout (or when
 * `fifos` is empty). A fifo in the result says what happened through `dequeue`, `isClosed` and
 * `waitForData` (which rejects with "peer-gone"). Each fifo is read by this process: calling
 * this makes it the fifo's consumer.
 */
export async function waitAny<T extends Fifo | MessageRing>(
  fifos: Iterable<T>,
  options?: WaitOptions,
): Promise<T[]> {
  if (typeof (fifos as Iterable<T> | null)?.[Symbol.iterator] !== "function") {
    throw new TypeError("waitAny takes an iterable of Fifo or MessageRing objects");
  }
  const list = [...fifos];
  for (const fifo of list) {
    if (!(fifo instanceof Fifo) && !(fifo instanceof MessageRing)) {
      throw new TypeError("waitAny takes Fifo or MessageRing objects");
    }
  }
  options = checkSleepOptions(options);
  if (list.length === 0) return [];
  const groups = new Map<Sleeper, { fifos: T[]; watches: Watch[] }>();
  for (const fifo of list) {
    let group = groups.get(fifo.sleeper);
    if (!group) groups.set(fifo.sleeper, group = { fifos: [], watches: [] });
    group.fifos.push(fifo);
    group.watches.push(fifo.dataWatch);
  }
  if (groups.size === 1) {
    const [[sleeper, group]] = groups;
    const ready = await sleeper.sleep(group.watches, options);
    return ready.map((i) => group.fifos[i]);
  }
  // Several segments: the first to wake ends the others' waits.
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal!.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const found = await Promise.race(
      [...groups].map(async ([sleeper, group]) => {
        const ready = await sleeper.sleep(group.watches, { ...options, signal: stop.signal });
        return ready.map((i) => group.fifos[i]);
      }),
    );
    const out = new Set(found);
    if (found.length > 0) {
      for (const group of groups.values()) {
        group.watches.forEach((w, i) => {
          if (w.ready()) out.add(group.fifos[i]);
        });
      }
    }
    return list.filter((f) => out.has(f));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    stop.abort(new Error("waitAny ended"));
  }
}
