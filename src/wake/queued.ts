/**
 * Calls that must wait their turn: a send (or receive) that has to wait queues behind those of its
 * handle that wait already, so that they complete in the order they were made.
 *
 * @module
 */

/**
 * Waits for `previous` (the call queued before this one; it never rejects): true once it is
 * settled, false if the deadline (a `performance.now()` time; `Infinity`: none) passes first.
 * Rejects with the signal's reason if `signal` aborts first.
 */
export async function waitTurn(
  previous: Promise<unknown>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
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
        if (deadline !== Infinity) timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
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
