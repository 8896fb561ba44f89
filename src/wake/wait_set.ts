/**
 * `WaitSet`: `waitAny` for a server's loop. `waitAny` registers every fifo at every call, so each
 * wake-up costs what is watched (a few hundred microseconds for a thousand fifos); a WaitSet
 * registers a fifo once, when it is added, and keeps it registered: a wait then looks only at the
 * fifos an event named, those it found ready last time, and those added since, as epoll does for
 * file descriptors.
 *
 * @module
 */

import { Fifo, type WaitOptions } from "../fifo/fifo.ts";
import { MessageRing } from "../ring/message_ring.ts";
import { SegmentError } from "../errors.ts";
import {
  checkSleepOptions,
  type Sleeper,
  spinMicrosOf,
  spinUntil,
  timeoutTimer,
  type Watch,
  type WatchList,
} from "./sleeper.ts";

interface Member<T> {
  readonly item: T;
  readonly watch: Watch;
  /** The order it was added in: results come in this order. */
  readonly order: number;
}

/** The members of one segment. */
interface Group<T> {
  readonly sleeper: Sleeper;
  /** Its watches, kept by its sleeper. */
  readonly list: WatchList;
  readonly byWatch: Map<Watch, Member<T>>;
}

/** The wait pending on a set. */
interface Waiting<T> {
  /** Starts watching a group (one added meanwhile). */
  watch(group: Group<T>): void;
  fail(error: unknown): void;
}

/**
 * A set of fifos (and message rings) that this process reads, to wait on together, again and
 * again: a server's loop over its clients.
 *
 * ```ts
 * using clients = new WaitSet<Fifo>();
 * clients.add(rx); // as clients arrive, also while a wait is pending
 * for (;;) {
 *   for (const fifo of await clients.wait({ timeoutMs: 30_000 })) serve(fifo);
 * }
 * ```
 *
 * `wait` resolves like {@link waitAny} over the members, but where `waitAny` registers every fifo
 * at every call, a member is registered once, when it is added: a wait looks at the members an
 * event named since the last wait, those it found ready then (a member stays ready until a look
 * finds it empty), and those added since. Its cost follows what is ready, not how many members
 * there are. Members of a private segment are the exception: each wait looks at all of them.
 *
 * Adding a fifo makes this process its consumer, as `waitAny` does. A member whose producer died,
 * that was closed, or that can no longer be read (freed; its words broken by a peer: its
 * `dequeue` throws the typed error) is in every result until it is deleted from the set: one
 * broken member never stops the others' waits.
 */
export class WaitSet<T extends Fifo | MessageRing = Fifo | MessageRing> implements Disposable {
  readonly #members = new Map<T, Member<T>>();
  readonly #groups = new Map<Sleeper, Group<T>>();
  #order = 0;
  #waiting: Waiting<T> | undefined;
  #closed = false;

  /** A set of `items` (none by default). */
  constructor(items: Iterable<T> = []) {
    for (const item of items) this.add(item);
  }

  /** How many members the set has. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether `item` is a member. */
  has(item: T): boolean {
    return this.#members.has(item);
  }

  /**
   * Adds `item` (a no-op for a member); a pending wait watches it from now on. Throws TypeError
   * for anything but a Fifo or MessageRing, and what the fifo's check throws (freed, deleted).
   */
  add(item: T): this {
    this.#open();
    if (!(item instanceof Fifo) && !(item instanceof MessageRing)) {
      throw new TypeError("a WaitSet holds Fifo or MessageRing objects");
    }
    if (this.#members.has(item)) return this;
    const watch = item.dataWatch; // checks it, and makes this process its consumer
    const sleeper = item.sleeper;
    let group = this.#groups.get(sleeper);
    const fresh = group === undefined;
    if (group === undefined) {
      group = { sleeper, list: sleeper.watchList(), byWatch: new Map() };
      this.#groups.set(sleeper, group);
    }
    const member = { item, watch, order: this.#order++ };
    group.byWatch.set(watch, member);
    group.list.add(watch); // a parked list tells the pending wait to look
    this.#members.set(item, member);
    if (fresh) this.#waiting?.watch(group);
    return this;
  }

  /** Removes `item`; false when it was not a member. */
  delete(item: T): boolean {
    const member = this.#members.get(item);
    if (member === undefined) return false;
    this.#members.delete(item);
    const group = this.#groups.get(item.sleeper)!;
    group.byWatch.delete(member.watch);
    group.list.delete(member.watch);
    if (group.byWatch.size === 0) {
      group.list.close();
      this.#groups.delete(group.sleeper);
    }
    return true;
  }

  /**
   * Resolves with the members that have data, were closed (or aborted), or lost their producer,
   * in the order they were added; with an empty array on timeout. An empty set waits for
   * members (or the timeout). A member that can no longer be read (freed, or its words broken by
   * a peer) is in the result too: its `dequeue` throws the typed error, and it should be deleted.
   * One wait at a time: a second one while the first is pending rejects with a `TypeError`.
   * Rejects with the signal's reason, and with `SegmentError` "deleted" when a member's segment
   * was deleted or the set is closed meanwhile.
   */
  wait(options?: WaitOptions): Promise<T[]> {
    // Not an async function: a wake-up resolves the caller's await one microtask later.
    try {
      options = checkSleepOptions(options);
      this.#open();
      if (this.#waiting !== undefined) throw new TypeError("a wait of this WaitSet is pending already");
      const started = performance.now();
      for (const group of this.#groups.values()) {
        if (group.list.prepare() !== undefined) return this.#prepareThenWait(options, started);
      }
      return this.#waitReady(options, started);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A first wait on a segment: its sleeper gets ready (the doorbell opens) first. */
  async #prepareThenWait(options: WaitOptions, started: number): Promise<T[]> {
    const holder: Waiting<T> = { watch: () => {}, fail: () => {} };
    this.#waiting = holder; // holds the place meanwhile: a second wait rejects
    try {
      for (const group of this.#groups.values()) {
        const prepared = group.list.prepare();
        if (prepared !== undefined) await prepared;
      }
    } finally {
      if (this.#waiting === holder) this.#waiting = undefined;
    }
    this.#open();
    return this.#waitReady(options, started);
  }

  #waitReady(options: WaitOptions, started: number): Promise<T[]> {
    let ready = this.#collect();
    if (ready.length === 0 && options.spinMicros && this.#groups.size > 0) {
      const { sleeper } = this.#groups.values().next().value!;
      spinUntil(() => (ready = this.#collect()).length > 0, spinMicrosOf(options), sleeper.way);
    }
    if (ready.length > 0 || options.timeoutMs === 0) return Promise.resolve(ready);
    return this.#park(options, started);
  }

  /** The ready members, in the order they were added. */
  #collect(): T[] {
    let ready: Member<T>[] | undefined;
    for (const group of this.#groups.values()) {
      for (const watch of group.list.take()) {
        const member = group.byWatch.get(watch);
        if (member !== undefined) (ready ??= []).push(member);
      }
    }
    if (ready === undefined) return [];
    ready.sort((a, b) => a.order - b.order);
    return ready.map((m) => m.item);
  }

  #park(options: WaitOptions, started: number): Promise<T[]> {
    const { timeoutMs, signal } = options;
    return new Promise<T[]>((resolve, reject) => {
      let done = false;
      const end = () => {
        done = true;
        if (this.#waiting === waiting) this.#waiting = undefined;
        for (const group of this.#groups.values()) group.list.unpark();
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const fail = (error: unknown) => {
        if (done) return;
        end();
        reject(error);
      };
      const recheck = () => {
        if (done) return;
        try {
          const ready = this.#collect();
          if (ready.length === 0) return;
          end();
          resolve(ready);
        } catch (error) {
          fail(error);
        }
      };
      const watch = (group: Group<T>) => {
        if (done) return;
        const list = group.list;
        const prepared = list.prepare();
        if (prepared === undefined) list.park(recheck);
        else {
          prepared.then(() => {
            if (!done && this.#groups.get(group.sleeper) === group) list.park(recheck);
            recheck();
          }, fail);
        }
      };
      const onAbort = () => fail(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const timer = timeoutTimer(
        timeoutMs === undefined ? undefined : timeoutMs - (performance.now() - started),
        () => {
          if (done) return;
          end();
          resolve([]);
        },
      );
      const waiting: Waiting<T> = { watch, fail };
      this.#waiting = waiting;
      for (const group of this.#groups.values()) watch(group);
      recheck(); // what changed before the lists were parked
    });
  }

  /**
   * Deletes every member; a pending wait rejects. Later calls (but `close`) throw `SegmentError`
   * "deleted". Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting?.fail(new SegmentError("deleted", "the WaitSet was closed"));
    for (const item of [...this.#members.keys()]) this.delete(item);
  }

  /** {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(): void {
    if (this.#closed) throw new SegmentError("deleted", "the WaitSet was closed");
  }
}
