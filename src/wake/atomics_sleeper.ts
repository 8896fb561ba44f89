/**
 * Sleeping in a private segment, whose sharers are threads (Workers) of one process: on
 * `Atomics.waitAsync` over the segment's SharedArrayBuffer, which needs no thread of its own.
 * The protocol of `word_wait.ts`: announce the sleeper, read the sequence word, re-check, sleep
 * only while the word is unchanged.
 *
 * @module
 */

import type { AtomicsSignaller } from "./signaller.ts";
import type { Waiters } from "./waiters.ts";
import { wake } from "./word_wait.ts";
import {
  checkSleepOptions,
  type GivesWay,
  lookNow,
  type Sleeper,
  type SleepOptions,
  spin,
  spinMicrosOf,
  type Watch,
  type WatchList,
} from "./sleeper.ts";

/** Longest single sleep: a wait re-checks at least this often. */
const SLICE_MS = 1000;

interface AtomicsMemory {
  readonly i32: Int32Array;
  readonly waiters: Waiters;
  readonly deleted: boolean;
}

/** The sleeper of a private segment. */
export class AtomicsSleeper implements Sleeper {
  readonly #mem: AtomicsMemory & { readonly signaller: AtomicsSignaller };
  constructor(mem: AtomicsMemory, signaller: AtomicsSignaller) {
    const memory = {
      i32: mem.i32,
      waiters: mem.waiters,
      signaller,
      get deleted() {
        return mem.deleted;
      },
    };
    this.#mem = memory;
  }

  sleep<T = readonly number[]>(
    watches: readonly Watch[],
    options: SleepOptions,
    finish?: (ready: readonly number[]) => T,
  ): Promise<T> {
    const slept = this.#sleep(watches, options);
    return finish ? slept.then(finish) : slept as Promise<T>;
  }

  async #sleep(watches: readonly Watch[], options: SleepOptions): Promise<readonly number[]> {
    options = checkSleepOptions(options);
    const { timeoutMs, signal, spinMicros } = options;
    const alive = () => true; // threads of this process do not die alone
    let ready = lookNow(watches, alive);
    if (ready.length > 0) return ready;
    if (spinMicros) {
      ready = spin(watches, spinMicrosOf(options), this.#mem.signaller);
      if (ready.length > 0) return ready;
    }
    const mem = this.#mem;
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    const onAbort = () => {
      for (const w of watches) if (!mem.deleted) wake(mem, w.seq, w.waiter);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    for (const w of watches) mem.waiters.enter(w.waiter);
    try {
      for (;;) {
        const values = watches.map((w) => Atomics.load(mem.i32, w.seq));
        ready = lookNow(watches, alive);
        if (ready.length > 0) return ready;
        const left = deadline - performance.now();
        if (left <= 0) return [];
        const sleepMs = Math.min(left, SLICE_MS);
        await Promise.race(watches.map((w, i) => mem.signaller.waitAsync(w.seq * 4, values[i], sleepMs)));
        signal?.throwIfAborted();
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!mem.deleted) { for (const w of watches) mem.waiters.leave(w.waiter); }
    }
  }

  /**
   * A WaitSet's members here: threads of one process post no events, so each take looks at all of
   * them, and a parked list sleeps in one `sleep` over all of them (made again when one is added).
   */
  watchList(): WatchList {
    const members = new Set<Watch>();
    let onEvent: (() => void) | undefined;
    let stop: AbortController | undefined;
    const sleepOnce = () => {
      stop?.abort();
      stop = undefined;
      if (onEvent === undefined || members.size === 0) return;
      const mine = stop = new AbortController();
      const woke = () => {
        if (stop !== mine) return; // ended, or replaced by a sleep over more members
        stop = undefined;
        onEvent?.(); // a failed look (a freed member) is the owner's to meet in its take
        sleepOnce();
      };
      this.sleep([...members], { signal: mine.signal }).then(woke, woke);
    };
    const unpark = () => {
      onEvent = undefined;
      sleepOnce();
    };
    return {
      add: (watch) => {
        members.add(watch);
        if (onEvent !== undefined) sleepOnce();
      },
      delete: (watch) => members.delete(watch),
      prepare: () => undefined,
      take: () => {
        const ready: Watch[] = [];
        if (this.#mem.deleted) { for (const w of members) w.check(); } // throws "deleted"
        for (const w of members) {
          try {
            w.check();
            if (w.ready()) ready.push(w);
            else w.rest?.();
          } catch {
            ready.push(w); // freed: its reader meets the error, the others go on
          }
        }
        return ready;
      },
      park: (event) => {
        onEvent = event;
        sleepOnce();
      },
      unpark,
      close: () => {
        unpark();
        members.clear();
      },
    };
  }

  notify(seq: number, waiter: number): void {
    wake(this.#mem, seq, waiter);
  }

  notifyMarked(): void {
    // Threads of one process: `notify` woke every one of them already (the waiter word counts them).
  }

  get way(): GivesWay {
    return this.#mem.signaller;
  }

  close(): void {
    // markDeleted already woke every sleeper; their checks then throw "deleted".
  }
}
