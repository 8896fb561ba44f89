/**
 * Calls that must wait their turn: a send (or receive) that has to wait queues behind those of its
 * handle that wait already, so that they complete in the order they were made.
 *
 * @module
 */

import { timeoutTimer } from "./sleeper.ts";

/**
 * The waiting calls of one kind on one handle, in the order made. While any waits, a new call
 * takes no fast path (`idle` is false) but joins the line.
 */
export class Line {
  #waiting = 0;
  /** The last call in line, settled or not; it never rejects. */
  #last: Promise<unknown> = Promise.resolve();

  /** Whether no call waits: a new one may complete at once. */
  get idle(): boolean {
    return this.#waiting === 0;
  }

  /**
   * Queues a call: once the calls before it settled, `go()` does its work. If its deadline (a
   * `performance.now()` time; `Infinity`: none) passes first, it ends with `late()` instead; if
   * `signal` aborts first, it rejects with the signal's reason.
   */
  join<T>(deadline: number, signal: AbortSignal | undefined, late: () => T, go: () => Promise<T>): Promise<T> {
    const previous = this.#last;
    this.#waiting++;
    const call = waitTurn(previous, deadline, signal).then((turn) => turn ? go() : late());
    const leave = () => void this.#waiting--;
    this.#last = call.then(leave, leave);
    return call;
  }
}

/** A deadline for `performance.now()`, `timeoutMs` from now (`Infinity` without one). */
export function deadlineOf(timeoutMs: number | undefined): number {
  return timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
}

/**
 * Waits for `previous` (it never rejects): true once it is settled, false if the deadline passes
 * first. Rejects with the signal's reason if `signal` aborts first.
 */
async function waitTurn(previous: Promise<unknown>, deadline: number, signal: AbortSignal | undefined) {
  if (deadline === Infinity && signal === undefined) {
    await previous;
    return true;
  }
  signal?.throwIfAborted();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      previous.then(() => true),
      new Promise<boolean>((resolve, reject) => {
        timer = timeoutTimer(deadline - performance.now(), () => resolve(false));
        if (signal !== undefined) {
          signal.addEventListener("abort", onAbort = () => reject(signal.reason), { once: true });
        }
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
  }
}
