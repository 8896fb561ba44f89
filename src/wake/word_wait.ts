/**
 * Sleeping until a condition on shared memory holds, for anything built on the segment (fifos,
 * message queues). A condition has a sequence word (a futex word the changing side bumps) and a
 * waiter word (`waiters.ts`: who sleeps, so that the changing side makes a system call only
 * then). The protocol: announce the sleeper, read the sequence word, re-check the condition,
 * sleep only while the word is unchanged. The changing side changes the shared state first
 * and looks for sleepers second, so whichever order the two run in, the sleeper either sees
 * the change or is woken: no wake-up is lost. Each sleep lasts at most {@link SLICE_MS}. This file
 * holds the blocking (Sync) waits; asynchronous ones are in the sleepers beside it (`sleeper.ts`).
 *
 * @module
 */

import type { Signaller } from "./signaller.ts";
import type { Waiters } from "./waiters.ts";
import { checkTimeout } from "./sleeper.ts";

/** What a wait needs of the segment. */
export interface WaitMemory {
  readonly i32: Int32Array;
  readonly signaller: Signaller;
  readonly waiters: Waiters;
  readonly deleted: boolean;
}

/** One condition to wait for. */
export interface WaitCondition {
  /** The sequence word and the waiter word, as u32 indices. */
  readonly seq: number;
  readonly waiter: number;
  /** Throws when the object waited on can no longer be used (deleted, freed). */
  check(): void;
  /** Whether the wait can end; runs after `check`. */
  ready(): boolean;
  /** When the wait cannot end yet: the error to end it with if the peer is gone, else undefined. */
  peerGone?(): Error | undefined;
}

/** Longest single sleep: a wait re-checks at least this often, so nothing sleeps forever. */
export const SLICE_MS = 1000;

/** Bumps a sequence word and wakes its sleepers; a fruitless wake lets the waiters clear a dead sleeper. */
export function wake(mem: WaitMemory, seq: number, waiter: number): void {
  Atomics.add(mem.i32, seq, 1);
  if (mem.signaller.wake(seq * 4) === 0) mem.waiters.fruitless(waiter);
}

/**
 * One look inside an announced wait: true when the condition holds, false at the deadline,
 * otherwise the sequence value to sleep on (read before the re-check) and for how long.
 */
function look(
  mem: WaitMemory,
  c: WaitCondition,
  deadline: number,
  sliceMs: number,
): boolean | { value: number; sleepMs: number } {
  c.check(); // deleted while we slept: stop here, before reading its memory
  const value = Atomics.load(mem.i32, c.seq);
  if (c.ready()) return true;
  const gone = c.peerGone?.();
  if (gone) {
    // Ready is looked at again once the peer is known dead: a peer that wrote its last bytes
    // and then died did so between the look at the data above and the look at its life.
    if (c.ready()) return true;
    throw gone;
  }
  const left = deadline - performance.now();
  if (left <= 0) return false;
  return { value, sleepMs: Math.min(left, sliceMs) };
}

/** Blocks the calling thread until the condition holds (true) or the timeout passes (false). */
export function waitSync(
  mem: WaitMemory,
  c: WaitCondition,
  timeoutMs: number | undefined,
  sliceMs = SLICE_MS,
): boolean {
  checkTimeout(timeoutMs);
  c.check();
  if (c.ready()) return true;
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  mem.waiters.enter(c.waiter);
  try {
    for (;;) {
      const next = look(mem, c, deadline, sliceMs);
      if (typeof next === "boolean") return next;
      mem.signaller.waitSync(c.seq * 4, next.value, next.sleepMs);
    }
  } finally {
    if (!mem.deleted) mem.waiters.leave(c.waiter);
  }
}
