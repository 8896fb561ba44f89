/**
 * Who sleeps on a fifo's sequence word. The word after each sequence word (`FF_DATA_WAITER`,
 * `FF_SPACE_WAITER`) says whether anybody sleeps, so that the other side makes a system call only
 * then. It must never stay set for nobody: every enqueue would then pay a system call forever.
 *
 * - Mapped segments, Sync waits (a thread blocked in FUTEX_WAIT): the word holds the tag of the
 *   process that sleeps with WAITER_SYNC set (each process counts its own sleepers privately and
 *   clears the word when its last one leaves). A waker whose wake-up found nobody asleep checks
 *   that the tag's process lives and, when it died, clears the word. (Asynchronous waits write
 *   the bare tag: `event_sleeper.ts`.)
 * - Private segments (threads of one process, which cannot die alone): the word is a count.
 *
 * @module
 */

import { WAITER_SYNC } from "../layout.ts";
import type { Liveness } from "../segment/process_table.ts";

/** The sleepers of one segment, as seen by this process. */
export interface Waiters {
  /** One more sleeper of this process on the waiter word `word` (a u32 index). */
  enter(word: number): void;
  /** One sleeper fewer. */
  leave(word: number): void;
  /** The waker found `word` set but woke nobody: clear it if its process is dead. */
  fruitless(word: number): void;
  /** Withdraws every sleeper of this process (the segment is being deleted); returns their words. */
  leaveAll(): number[];
}

/** Waiter words that hold the sleeping process's tag, marked WAITER_SYNC. */
export class TaggedWaiters implements Waiters {
  readonly #u32: Uint32Array;
  readonly #liveness: Liveness;
  readonly #counts = new Map<number, number>();
  readonly #value: number;
  constructor(u32: Uint32Array, liveness: Liveness) {
    this.#u32 = u32;
    this.#liveness = liveness;
    this.#value = (liveness.ownTag | WAITER_SYNC) >>> 0;
  }
  enter(word: number): void {
    this.#counts.set(word, (this.#counts.get(word) ?? 0) + 1);
    Atomics.store(this.#u32, word, this.#value);
  }
  leave(word: number): void {
    const count = (this.#counts.get(word) ?? 1) - 1;
    if (count > 0) {
      this.#counts.set(word, count);
      return;
    }
    this.#counts.delete(word);
    Atomics.compareExchange(this.#u32, word, this.#value, 0);
  }
  fruitless(word: number): void {
    const value = Atomics.load(this.#u32, word);
    const tag = (value & ~WAITER_SYNC) >>> 0;
    if (tag !== 0 && !this.#counts.has(word) && !this.#liveness.isAlive(tag)) {
      Atomics.compareExchange(this.#u32, word, value, 0);
    }
  }
  leaveAll(): number[] {
    const words = [...this.#counts.keys()];
    for (const word of words) Atomics.compareExchange(this.#u32, word, this.#value, 0);
    this.#counts.clear();
    return words;
  }
}

/** Waiter words that count sleepers (private segments). */
export class CountedWaiters implements Waiters {
  readonly #u32: Uint32Array;
  readonly #counts = new Map<number, number>();
  constructor(u32: Uint32Array) {
    this.#u32 = u32;
  }
  enter(word: number): void {
    this.#counts.set(word, (this.#counts.get(word) ?? 0) + 1);
    Atomics.add(this.#u32, word, 1);
  }
  leave(word: number): void {
    const count = (this.#counts.get(word) ?? 1) - 1;
    if (count > 0) this.#counts.set(word, count);
    else this.#counts.delete(word);
    Atomics.sub(this.#u32, word, 1);
  }
  fruitless(): void {}
  leaveAll(): number[] {
    const words = [...this.#counts.keys()];
    for (const word of words) Atomics.sub(this.#u32, word, this.#counts.get(word)!);
    this.#counts.clear();
    return words;
  }
}
