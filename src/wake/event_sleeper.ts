/**
 * Sleeping in the event loop on a mapped segment, and waking the other side's sleepers: the
 * protocol "Waking through the event loop" of `layout.ts`. No thread, Worker or blocking call
 * per pending wait: a wait is an entry in this process's tables, woken by an event that names
 * its chunk, pushed by the other side, whose doorbell byte reaches the runtime's reactor.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  SLEEPER_ENTRY_SIZE,
  SLEEPER_FEW,
  SLEEPER_PARKED,
  SLEEPER_SCAN,
  SLEEPER_TABLE,
  SLP_EVENTS,
  SLP_FLAGS,
  SLP_KEY,
  SLP_TAG,
  WAITER_SYNC,
} from "../layout.ts";
import type { Liveness } from "../segment/process_table.ts";
import type { Signaller } from "./signaller.ts";
import type { Waiters } from "./waiters.ts";
import { drainEvents, formatEventRing, pushEvent, ringAt } from "./event_ring.ts";
import {
  checkSleepOptions,
  type GivesWay,
  lookNow,
  readyNow,
  type Sleeper,
  type SleepOptions,
  spin,
  spinMicrosOf,
  timeoutTimer,
  type Watch,
  type WatchList,
} from "./sleeper.ts";
import { FULL_CHECK_TICKS, type HubMember, type WakeHub } from "./wake_hub.ts";

/** What the sleeper needs of its segment. */
export interface EventMemory {
  readonly name: string;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly signaller: Signaller;
  readonly liveness: Liveness;
  /** The Sync sleepers' waiter words. */
  readonly waiters: Waiters;
  readonly deleted: boolean;
  /**
   * The chunk for this process's event ring: `previous` (the last holder of this slot left it)
   * when it is a live event-ring chunk, else a new one; 0 when the segment has no room.
   */
  eventChunk(previous: number): number;
}

/**
 * Up to this many watches over all pending waits, a ring of the doorbell looks at each of them
 * before it reads the event ring (see `service`), and a sleeper that parks says so to its wakers
 * (SLEEPER_FEW), who then set SCAN instead of pushing events. (A `waitAny` over many fifos is one
 * wait of many watches: its events say which ones to look at.)
 */
const DIRECT_LOOKS = 4;

/**
 * The pending waits on one chunk, the watch lists that hold it, and how many of them count on
 * each of its waiter words (pairs of word and count: a chunk has one or two; a count may be 0).
 */
interface Spot {
  readonly waits: Set<Pending>;
  lists: Set<ListState> | undefined;
  readonly words: number[];
}

/** A {@link WatchList}: persistent watches, one per chunk. */
interface ListState {
  readonly members: Map<number, Watch>;
  /** The members to look at in the next take. */
  readonly candidates: Set<Watch>;
  /** Members whose peer a tick found dead, and that peer's tag. */
  readonly gone: Map<Watch, number>;
  /** Set while the list's owner waits. */
  onEvent: (() => void) | undefined;
  /** Whether a call of `onEvent` is queued. */
  due: boolean;
  readonly fire: () => void;
}

/** Where `word`'s pair sits in a spot's `words`; `words.length` when it has none. */
function pairOf(words: readonly number[], word: number): number {
  let i = 0;
  while (i < words.length && words[i] !== word) i += 2;
  return i;
}

interface Pending {
  /** Where it sits in the sleeper's list of pending waits. */
  at: number;
  readonly watches: readonly Watch[];
  /** The spot of each watch's chunk (found once, when the wait registers). */
  readonly spots: Spot[];
  readonly finish: ((ready: readonly number[]) => unknown) | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
}

/** The sleeper of one mapped segment in one process. */
export class EventSleeper implements Sleeper, HubMember {
  readonly #mem: EventMemory;
  readonly #u32: Uint32Array;
  readonly #hub: WakeHub;
  /** The pending waits, in no order: a wait that ends swaps the last one into its place. */
  readonly #pending: Pending[] = [];
  /**
   * Waits that ended and still count on their waiter words: the words are let go in a microtask
   * queued after the wake-up's (see `#settle`).
   */
  #leaving: Pending[] = [];
  readonly #leave = () => this.#letGo();
  /** The watches of the pending waits and the members of the watch lists, counted. */
  #watching = 0;
  /** The watch lists that have members. */
  readonly #lists = new Set<ListState>();
  /** The watch lists whose owner waits. */
  #parkedLists = 0;
  /** Per chunk: its pending waits, and the waiter words they armed (a word is cleared when its last one leaves). */
  readonly #byChunk = new Map<number, Spot>();
  /** An event named `chunk`: the waits on it look again (a settled one leaves the set meanwhile). */
  readonly #visit = (chunk: number) => {
    const spot = this.#byChunk.get(chunk);
    if (spot === undefined) return;
    for (const p of spot.waits) this.#evaluate(p);
    if (spot.lists !== undefined) { for (const l of spot.lists) this.#mark(l, l.members.get(chunk)); }
  };
  /** Our sleeper-table entry's words, and our event ring's data (-1: none, events then only say SCAN). */
  readonly #entry: number;
  /** Our tag, bare (an asynchronous sleeper's mark) and with WAITER_SYNC (a blocked one's). */
  readonly #own: number;
  readonly #ownSync: number;
  #ring = -1;
  #setUp: Promise<void> | undefined;
  #entryWritten = false;
  #ticks = 0;
  #closed = false;

  constructor(mem: EventMemory, hub: WakeHub) {
    this.#mem = mem;
    this.#u32 = mem.u32;
    this.#hub = hub;
    this.#own = mem.liveness.ownTag;
    this.#ownSync = (this.#own | WAITER_SYNC) >>> 0;
    this.#entry = (SLEEPER_TABLE + (this.#own & 0xff) * SLEEPER_ENTRY_SIZE) >>> 2;
  }

  // ---- the sleeping side ----

  sleep<T = readonly number[]>(
    watches: readonly Watch[],
    options: SleepOptions,
    finish?: (ready: readonly number[]) => T,
  ): Promise<T> {
    try {
      options = checkSleepOptions(options);
      // Ready now? (A dead peer is looked for at the next tick: no system call on this path.)
      let ready = readyNow(watches);
      if (ready.length === 0 && options.spinMicros) ready = spin(watches, spinMicrosOf(options), this.#mem.signaller);
      if (ready.length > 0 || options.timeoutMs === 0) return Promise.resolve(finish ? finish(ready) : ready as T);
      // Not an async function: a wait resolves one microtask after its event, not three.
      return (this.#entryWritten
        ? this.#park(watches, options, performance.now(), finish)
        : this.#setUpThenPark(watches, options, finish)) as Promise<T>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #setUpThenPark(
    watches: readonly Watch[],
    options: SleepOptions,
    finish: ((ready: readonly number[]) => unknown) | undefined,
  ): Promise<unknown> {
    const started = performance.now();
    await (this.#setUp ??= this.#setUpEntry());
    options.signal?.throwIfAborted();
    const ready = readyNow(watches);
    if (ready.length > 0) return finish ? finish(ready) : ready;
    return this.#park(watches, options, started, finish);
  }

  /** Registers a pending wait, arms its words, looks once more, and parks. */
  #park(
    watches: readonly Watch[],
    options: SleepOptions,
    started: number,
    finish: ((ready: readonly number[]) => unknown) | undefined,
  ): Promise<unknown> {
    const { timeoutMs, signal } = options;
    return new Promise<unknown>((resolve, reject) => {
      const p: Pending = {
        at: 0,
        watches,
        spots: [],
        finish,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        done: false,
      };
      this.#register(p);
      if (timeoutMs !== undefined) {
        p.timer = timeoutTimer(timeoutMs - (performance.now() - started), () => this.#settle(p, []));
      }
      if (signal) {
        p.onAbort = () => this.#settle(p, signal.reason, true);
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      // Announced: now a change either shows in this look or posts an event.
      for (const w of watches) this.#announce(w);
      try {
        const ready = readyNow(watches);
        if (ready.length > 0) this.#settle(p, ready);
      } catch (error) {
        this.#settle(p, error, true);
      }
      if (!p.done) this.#setParked();
    });
  }

  /** Writes our sleeper-table entry (once): the doorbell key and the event ring. */
  async #setUpEntry(): Promise<void> {
    const bell = await this.#hub.doorbell();
    if (this.#closed || this.#mem.deleted) return;
    const u32 = this.#u32;
    const e = this.#entry;
    const own = this.#own;
    const previous = Atomics.load(u32, e + SLP_EVENTS / 4);
    Atomics.store(u32, e + SLP_TAG / 4, 0); // wakers ignore the entry while it changes
    const chunk = this.#mem.eventChunk(previous);
    if (chunk !== 0) {
      formatEventRing(u32, chunk, own);
      this.#ring = ringAt(u32, chunk, own);
    }
    Atomics.store(u32, e + SLP_FLAGS / 4, 0);
    Atomics.store(u32, e + SLP_EVENTS / 4, chunk);
    Atomics.store(u32, e + SLP_KEY / 4, bell.key);
    Atomics.store(u32, e + SLP_TAG / 4, own);
    this.#hub.add(this);
    this.#entryWritten = true;
  }

  #register(p: Pending): void {
    p.at = this.#pending.length;
    this.#pending.push(p);
    this.#watching += p.watches.length;
    for (const w of p.watches) {
      const spot = this.#spotOf(w.chunk);
      spot.waits.add(p);
      p.spots.push(spot);
      this.#hold(spot, w.waiter);
    }
    this.#hub.pendingDelta(1);
  }

  /** The spot of `chunk`, made on first use (and kept when empty: the next wait reuses it). */
  #spotOf(chunk: number): Spot {
    let spot = this.#byChunk.get(chunk);
    if (spot === undefined) this.#byChunk.set(chunk, spot = { waits: new Set(), lists: undefined, words: [] });
    return spot;
  }

  /** One more wait (or list member) counts on `word` of `spot`. */
  #hold(spot: Spot, word: number): void {
    const words = spot.words;
    const i = pairOf(words, word);
    if (i === words.length) words.push(word, 1);
    else words[i + 1]++;
  }

  /**
   * One fewer counts on the waiter word of `w` in `spot`: the last one clears it (while the memory
   * is `mapped`), unless the word is shared (`Watch.announce`).
   */
  #release(spot: Spot, w: Watch, mapped: boolean): void {
    const word = w.waiter;
    const words = spot.words;
    const i = pairOf(words, word);
    if (i < words.length && --words[i + 1] > 0) return; // a count of 0 stays, for the next wait
    // A word several processes arm stays: it may be the only sign that another process sleeps,
    // marked in its bits after its arm was overwritten by ours. The next waker clears it.
    if (w.announce !== undefined) return;
    // The last wait on the word left. Usually the waker took the word already: a load, not a
    // locked compare-and-swap, then.
    const own = this.#own;
    if (mapped && Atomics.load(this.#u32, word) === own) Atomics.compareExchange(this.#u32, word, own, 0);
  }

  /** Writes our tag into a waiter word that no longer names us (a waker took it, or a Sync wait left). */
  #arm(word: number): void {
    const own = this.#own;
    const value = Atomics.load(this.#u32, word);
    if (value !== own && value !== this.#ownSync) Atomics.store(this.#u32, word, own);
  }

  /**
   * Arms `w`'s waiter word, after whatever else the watch marks (see `Watch.announce`): a waker
   * that clears the word and then takes the marks finds ours, even when the word it cleared was
   * armed by another process after us.
   */
  #announce(w: Watch): void {
    w.announce?.();
    this.#arm(w.waiter);
  }

  /** Settles `p` when a watch is ready (or its check throws); otherwise re-arms its words and looks once more. */
  #evaluate(p: Pending, alive?: (tag: number) => boolean): void {
    if (p.done) return; // ended, and leaving its spots (see #settle)
    try {
      let ready = readyNow(p.watches);
      if (ready.length === 0) {
        for (const w of p.watches) this.#announce(w);
        ready = alive ? lookNow(p.watches, alive) : readyNow(p.watches);
      }
      if (ready.length > 0) this.#settle(p, ready);
    } catch (error) {
      this.#settle(p, error, true);
    }
  }

  #settle(p: Pending, result: unknown, failed = false): void {
    if (p.done) return;
    p.done = true;
    const list = this.#pending;
    const last = list.pop()!;
    if (last !== p) list[last.at = p.at] = last;
    this.#watching -= p.watches.length;
    const first = this.#leaving.push(p) === 1;
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort);
    if (failed) p.reject(result);
    else if (p.finish === undefined) p.resolve(result);
    else {
      try {
        p.resolve(p.finish(result as readonly number[]));
      } catch (error) {
        p.reject(error);
      }
    }
    // After the resolve, so that they run after the code this wait resumes, which usually waits
    // again: the wait's spots and waiter words are let go (off the way from the wake-up to that
    // code; words it armed again stay armed, not cleared and set), and the hub looks at whether to
    // let the process exit.
    if (first) queueMicrotask(this.#leave);
    this.#hub.pendingDelta(-1);
  }

  /** Takes the waits that ended off their spots, and clears each waiter word no wait counts on. */
  #letGo(): void {
    const leaving = this.#leaving;
    if (leaving.length === 0) return;
    this.#leaving = [];
    const mapped = !this.#mem.deleted;
    for (const p of leaving) {
      const watches = p.watches;
      for (let k = 0; k < watches.length; k++) {
        const spot = p.spots[k];
        spot.waits.delete(p);
        this.#release(spot, watches[k], mapped);
      }
    }
  }

  // ---- watch lists (WaitSet) ----

  watchList(): WatchList {
    const l: ListState = {
      members: new Map(),
      candidates: new Set(),
      gone: new Map(),
      onEvent: undefined,
      due: false,
      fire: () => {
        l.due = false;
        l.onEvent?.();
        // Still waiting (nothing was ready after all): wakers ring again from now on.
        if (l.onEvent !== undefined && this.#entryWritten && !this.#mem.deleted) this.#setParked();
      },
    };
    return {
      add: (watch) => this.#listAdd(l, watch),
      delete: (watch) => this.#listDelete(l, watch),
      prepare: () => this.#entryWritten ? undefined : (this.#setUp ??= this.#setUpEntry()),
      take: () => this.#take(l),
      park: (onEvent) => this.#listPark(l, onEvent),
      unpark: () => this.#listUnpark(l),
      close: () => {
        this.#listUnpark(l);
        for (const w of [...l.members.values()]) this.#listDelete(l, w);
      },
    };
  }

  #listAdd(l: ListState, w: Watch): void {
    const old = l.members.get(w.chunk);
    if (old === w) return;
    // A freed member's chunk, allocated again: the new object takes its place.
    if (old !== undefined) this.#listDelete(l, old);
    l.members.set(w.chunk, w);
    const spot = this.#spotOf(w.chunk);
    (spot.lists ??= new Set()).add(l);
    this.#hold(spot, w.waiter); // armed at the first take that finds it not ready
    this.#watching++;
    this.#lists.add(l);
    this.#mark(l, w);
  }

  #listDelete(l: ListState, w: Watch): void {
    if (l.members.get(w.chunk) !== w) return;
    l.members.delete(w.chunk);
    l.candidates.delete(w);
    l.gone.delete(w);
    const spot = this.#byChunk.get(w.chunk)!;
    spot.lists!.delete(l);
    this.#release(spot, w, !this.#mem.deleted);
    this.#watching--;
    if (l.members.size === 0) this.#lists.delete(l);
  }

  /** `w` (a member of `l`, if defined) is to be looked at: tells a waiting owner. */
  #mark(l: ListState, w: Watch | undefined): void {
    if (w === undefined) return;
    l.candidates.add(w);
    if (l.onEvent !== undefined && !l.due) {
      l.due = true;
      queueMicrotask(l.fire);
    }
  }

  #markAll(l: ListState): void {
    for (const w of l.members.values()) this.#mark(l, w);
  }

  #take(l: ListState): Watch[] {
    const ready: Watch[] = [];
    // Events that came while nobody waited name candidates too.
    if (this.#entryWritten && !this.#mem.deleted) this.#drain(false, undefined);
    if (this.#mem.deleted) throw new SegmentError("deleted", `segment "${this.#mem.name}" was deleted`);
    // Before our entry names our doorbell, a waker drops its event: nothing is armed until then.
    const arming = this.#entryWritten;
    for (const w of l.candidates) {
      try {
        if (this.#looksReady(l, w)) {
          ready.push(w); // stays a candidate: the next take looks again
          continue;
        }
        if (!arming) continue;
        // Announced: now a change either shows in this look or posts an event naming it.
        this.#announce(w);
        if (w.ready()) ready.push(w);
        else {
          l.candidates.delete(w);
          w.rest?.();
        }
      } catch {
        // Freed, or its words broken by a peer: reported, so that its reader meets the typed
        // error (and deletes it) while the other members go on.
        ready.push(w);
      }
    }
    return ready;
  }

  /** Whether member `w` of `l` is ready, or its peer was found dead (and still is the peer). Throws what its check throws. */
  #looksReady(l: ListState, w: Watch): boolean {
    w.check();
    const dead = l.gone.get(w);
    if (dead !== undefined) {
      if (w.peer() === dead) return true;
      l.gone.delete(w); // another process took that end since
    }
    return w.ready();
  }

  #listPark(l: ListState, onEvent: () => void): void {
    if (l.onEvent === undefined) {
      this.#parkedLists++;
      this.#hub.pendingDelta(1);
    }
    l.onEvent = onEvent;
    if (this.#entryWritten && !this.#mem.deleted) this.#setParked();
  }

  #listUnpark(l: ListState): void {
    if (l.onEvent === undefined) return;
    l.onEvent = undefined;
    this.#parkedLists--;
    this.#hub.pendingDelta(-1);
  }

  /** Says we sleep (wakers ring from now on), then drains what came before. */
  #setParked(): void {
    const word = this.#entry + SLP_FLAGS / 4;
    if (this.#watching <= DIRECT_LOOKS) Atomics.or(this.#u32, word, SLEEPER_PARKED | SLEEPER_FEW);
    else if ((Atomics.or(this.#u32, word, SLEEPER_PARKED) & SLEEPER_FEW) !== 0) {
      Atomics.and(this.#u32, word, ~SLEEPER_FEW);
    }
    this.#drain(false, undefined);
  }

  /** Our doorbell rang (or a local event): take the events, settle what they concern. */
  service(): void {
    const list = this.#pending;
    if ((list.length === 0 && this.#parkedLists === 0) || this.#mem.deleted) return;
    if (this.#watching <= DIRECT_LOOKS) {
      // Few watches: each wait looks at once, and when all of them end, the events that rang us
      // stay in the ring until the next park drains them (a stale event costs a look, never a
      // wake-up).
      // The ring's words and our flags were written by the waker's processor: not reading them
      // here keeps those cache-line transfers out of the wake-up's way.
      // Last to first: a wait that ends moves the last one (looked at already) into its place.
      for (let i = list.length - 1; i >= 0; i--) if (i < list.length) this.#evaluate(list[i]);
      if (this.#lists.size !== 0) { for (const l of this.#lists) this.#markAll(l); }
      if (list.length === 0 && this.#parkedLists === 0) return;
    }
    // Awake: no rings needed. A waker that rang cleared the flag already.
    const flags = this.#entry + SLP_FLAGS / 4;
    const seen = Atomics.load(this.#u32, flags);
    if ((seen & SLEEPER_PARKED) !== 0) Atomics.and(this.#u32, flags, ~SLEEPER_PARKED);
    // A SCAN set after this load is seen by the drain of the next park.
    this.#drain(false, undefined, seen);
    if (this.#parkAgain()) this.#setParked();
  }

  /**
   * Whether a wait still needs the doorbell after a wake-up: a pending wait, or a waiting list
   * that no event named (one that was named looks in a microtask, and parks again if it must).
   */
  #parkAgain(): boolean {
    if (this.#pending.length > 0) return true;
    if (this.#parkedLists > 0) { for (const l of this.#lists) if (l.onEvent !== undefined && !l.due) return true; }
    return false;
  }

  /**
   * Every TICK_MS while waits are pending: the waits whose peer died are settled (one liveness
   * question per peer process), and every FULL_CHECK_TICKS-th tick re-checks every wait and skips
   * a ring slot a dead waker left half written, so that an event lost to a crash (a waker killed
   * between clearing a waiter word and posting its event) or to a failed ring costs latency, never
   * a wait that hangs.
   */
  tick(): void {
    if ((this.#pending.length === 0 && this.#parkedLists === 0) || this.#mem.deleted) return;
    const known = new Map<number, boolean>();
    const liveness = this.#mem.liveness;
    const alive = (tag: number) => {
      let answer = known.get(tag);
      if (answer === undefined) known.set(tag, answer = liveness.isAlive(tag));
      return answer;
    };
    for (const l of this.#lists) {
      if (l.onEvent === undefined) continue; // its owner does not wait: its next wait's ticks will see
      for (const w of l.members.values()) {
        const peer = w.peer();
        if (peer !== 0 && !alive(peer)) {
          l.gone.set(w, peer);
          this.#mark(l, w);
        }
      }
    }
    if (++this.#ticks % FULL_CHECK_TICKS === 0) {
      this.#drain(true, alive);
    } else {
      for (const p of this.#pending.slice()) {
        for (const w of p.watches) {
          const peer = w.peer();
          if (peer !== 0 && !alive(peer)) {
            this.#evaluate(p, alive);
            break;
          }
        }
      }
      this.#drain(false, undefined);
    }
    if (this.#pending.length > 0 || this.#parkedLists > 0) this.#setParked();
  }

  /**
   * Drains our ring, re-checking the waits each event names as it comes; `all` re-checks every
   * pending wait (a tick, or an event was lost). `flags`: our flags word, when the caller just
   * loaded it.
   */
  #drain(all: boolean, alive: ((tag: number) => boolean) | undefined, flags?: number): void {
    const u32 = this.#u32;
    const word = this.#entry + SLP_FLAGS / 4;
    let scan = all ||
      (((flags ?? Atomics.load(u32, word)) & SLEEPER_SCAN) !== 0 &&
        (Atomics.and(u32, word, ~SLEEPER_SCAN) & SLEEPER_SCAN) !== 0);
    if (this.#ring >= 0 && !drainEvents(u32, this.#ring, this.#visit, all)) scan = true;
    if (scan) {
      for (const p of this.#pending.slice()) this.#evaluate(p, alive);
      for (const l of this.#lists) this.#markAll(l);
    }
  }

  // ---- the waking side ----

  notify(seq: number, waiter: number, chunk: number): void {
    const u32 = this.#u32;
    const value = Atomics.load(u32, waiter);
    if (value === 0) return;
    if ((value & WAITER_SYNC) !== 0) {
      // A thread blocked in FUTEX_WAIT: bump the word and wake it.
      Atomics.add(this.#mem.i32, seq, 1);
      if (this.#mem.signaller.wake(seq * 4) === 0) this.#mem.waiters.fruitless(waiter);
      return;
    }
    // One event per sleep: whoever clears the word posts it.
    if (Atomics.compareExchange(u32, waiter, value, 0) !== value) return;
    this.#post(value, chunk);
  }

  notifyMarked(bits: number, count: number, chunk: number): void {
    const u32 = this.#u32;
    for (let k = 0; k < count; k++) {
      if (Atomics.load(u32, bits + k) === 0) continue;
      let taken = Atomics.exchange(u32, bits + k, 0);
      while (taken !== 0) {
        const bit = 31 - Math.clz32(taken);
        taken = (taken & ~(1 << bit)) >>> 0;
        // Whoever holds the slot now: a forged bit, or one its process left set, costs a look.
        const slot = k * 32 + bit;
        const tag = Atomics.load(u32, (SLEEPER_TABLE + slot * SLEEPER_ENTRY_SIZE + SLP_TAG) >>> 2);
        if (tag !== 0 && (tag & 0xff) === slot) this.#post(tag, chunk);
      }
    }
  }

  /** Posts an event for `chunk` to the process `tag`, ringing its doorbell if it is parked. */
  #post(tag: number, chunk: number): void {
    const u32 = this.#u32;
    const e = (SLEEPER_TABLE + (tag & 0xff) * SLEEPER_ENTRY_SIZE) >>> 2;
    if (Atomics.load(u32, e + SLP_TAG / 4) !== tag) return; // not (or no longer) sleeping here
    const key = Atomics.load(u32, e + SLP_KEY / 4);
    const word = e + SLP_FLAGS / 4;
    let flags = Atomics.load(u32, word);
    if ((flags & SLEEPER_FEW) !== 0) {
      // A sleeper that looks at all its waits when rung: SCAN is its event (no retry loop that a
      // peer flipping the word could keep going).
      if ((flags & SLEEPER_SCAN) === 0) flags = Atomics.or(u32, word, SLEEPER_SCAN);
    } else {
      const events = Atomics.load(u32, e + SLP_EVENTS / 4);
      const d = events === 0 ? -1 : ringAt(u32, events, tag);
      if (d < 0 || !pushEvent(u32, d, chunk)) Atomics.or(u32, word, SLEEPER_SCAN);
      // Read after the push: a sleeper that parked before it drains the event, one that parks
      // after it is rung.
      flags = Atomics.load(u32, word);
    }
    if (tag === this.#own) this.#hub.local();
    else if (
      (flags & SLEEPER_PARKED) !== 0 && (Atomics.and(u32, word, ~SLEEPER_PARKED) & SLEEPER_PARKED) !== 0
    ) {
      this.#hub.ring(key);
    }
  }

  get way(): GivesWay {
    return this.#mem.signaller;
  }

  /** The segment is being deleted: pending waits fail with "deleted", our entry is withdrawn. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.remove(this);
    const error = new SegmentError("deleted", `segment "${this.#mem.name}" was deleted`);
    for (const p of this.#pending.slice()) this.#settle(p, error, true);
    this.#letGo(); // now: the segment is unmapped next
    // The lists' owners look again, after the unmap: their takes throw "deleted" then.
    const own = this.#own;
    for (const l of this.#lists) {
      for (const w of l.members.values()) Atomics.compareExchange(this.#u32, w.waiter, own, 0);
      this.#markAll(l);
    }
    // The event ring stays with the slot (a waker may be writing to it right now); the next
    // process to hold the slot reuses it.
    Atomics.compareExchange(this.#u32, this.#entry + SLP_TAG / 4, this.#own, 0);
  }
}
