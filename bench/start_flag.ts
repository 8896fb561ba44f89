/**
 * How a benchmark peer waits for its start: the orchestrator (`run.ts`, `queue.ts`) sets the tag of
 * a "go" fifo once every side printed READY. A peer whose orchestrator died before that (SIGKILLed:
 * no handler of its own ran, so nobody will kill the peers it started) exits instead of waiting on
 * as an orphan, spinning on a core or waking every millisecond for good. Its parent's pid changing
 * (the kernel hands an orphan to init or a subreaper) is how it knows.
 *
 * @module
 */

import type { Fifo } from "../mod.ts";

/** Spins until `go`'s tag is set: the polling cases start on the flag without a wake-up's delay. */
export function spinUntilStart(go: Fifo): void {
  const parent = process.ppid;
  for (let i = 1; go.tag === 0; i++) {
    if ((i & 0xffff) === 0 && process.ppid !== parent) orphaned(parent);
  }
}

/** Waits (a timer of 1 ms at a time) until `go`'s tag is set. */
export async function sleepUntilStart(go: Fifo): Promise<void> {
  const parent = process.ppid;
  while (go.tag === 0) {
    if (process.ppid !== parent) orphaned(parent);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function orphaned(parent: number): never {
  console.error(`bench peer ${process.pid}: its orchestrator (pid ${parent}) is gone before the start; exiting`);
  process.exit(3);
}
