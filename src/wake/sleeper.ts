/**
 * What an asynchronous wait needs from its segment: a {@link Sleeper} parks a set of
 * {@link Watch}es until one of them is ready (or lost its peer), and wakes the other side's
 * sleepers when this side changed something. Mapped segments sleep in the event loop
 * (`event_sleeper.ts`); private segments, whose threads share one process, sleep in
 * `Atomics.waitAsync` (`atomics_sleeper.ts`).
 *
 * @module
 */

/** One condition to wait for: something of one chunk (a fifo, a queue). */
export interface Watch {
  /** The chunk's offset: the event that wakes this watch names it. */
  readonly chunk: number;
  /** The sequence word and the waiter word (u32 indices) of the condition. */
  readonly seq: number;
  readonly waiter: number;
  /** Throws when the object can no longer be used (deleted, freed). */
  check(): void;
  /** Whether the wait can end; runs after `check`. */
  ready(): boolean;
  /** The tag of the process at the other end, whose death ends the wait; 0 when none is known. */
  peer(): number;
  /**
   * Called wherever the wait arms its waiter word, just before it (and so before the look that
   * follows): a message queue's producer marks its process in the queue's bits of sleeping
   * producers, since the producer processes share one waiter word. A watch with `announce`
   * leaves its waiter word armed when it ends (another process's sleep may depend on it).
   */
  announce?(): void;
  /**
   * A `WaitSet` found it not ready and sleeps on it: a chunked fifo's reader gives back its spare
   * chunks (a single wait does that as it begins).
   */
  rest?(): void;
}

/** Options of an asynchronous wait. */
export interface SleepOptions {
  /**
   * Give up after this many milliseconds. Default: no limit; 2^31 or more (24.8 days), or
   * `Infinity`: no limit.
   */
  timeoutMs?: number;
  /**
   * Cancels the wait: it rejects with the signal's reason. A call given a signal already aborted
   * rejects at once, having sent or taken nothing.
   */
  signal?: AbortSignal;
  /**
   * Poll for up to this many microseconds before parking: lower latency for a busy CPU. The
   * event loop does not run meanwhile. Never longer than `timeoutMs`. A thread that may run on
   * one CPU only gives way to the others waiting for it after 20 us of polling (its peer may be
   * one of them). Default 0.
   */
  spinMicros?: number;
}

/**
 * A `WaitSet`'s watches in one segment: each stays registered until deleted (its waiter word
 * armed again whenever it was found not ready), so that a wait over many costs what is ready, not
 * what is watched. Level-triggered: a watch found ready stays a candidate until a look finds it
 * not ready.
 */
export interface WatchList {
  /** Watches `watch` from now on: a candidate at the next `take`. One watch per chunk: a later one replaces it. */
  add(watch: Watch): void;
  /** Stops watching `watch` (its waiter word is let go when nothing else here waits on it). */
  delete(watch: Watch): void;
  /** Readies the segment's sleeper for waking (once); undefined when it is ready already. */
  prepare(): Promise<void> | undefined;
  /**
   * The watches ready now, or whose peer a liveness tick found dead, among the candidates (those
   * an event named, those ready at the last take, those added since); arms the others and drops
   * them. Throws what a watch's check throws.
   */
  take(): Watch[];
  /**
   * Calls `onEvent` (in a microtask, coalesced) whenever an event names a watch or a tick finds
   * a peer dead, until `unpark`; the doorbell keeps the process alive meanwhile.
   */
  park(onEvent: () => void): void;
  /** Ends `park` (idempotent). */
  unpark(): void;
  /** Deletes every watch and unparks. */
  close(): void;
}

/** Sleeps and wakes for one segment in one process. */
export interface Sleeper {
  /**
   * Resolves with the indices of `watches` that are ready or whose peer died (ready ones first
   * checked), or with an empty array at the timeout. Rejects when a watch's check throws, or
   * with the signal's reason. With `finish`, resolves with what it returns for those indices
   * instead (rejects with what it throws): it runs where the wait ends, so that the caller's
   * `await` resumes one microtask after the wake-up rather than after a `then` chain.
   */
  sleep<T = readonly number[]>(
    watches: readonly Watch[],
    options: SleepOptions,
    finish?: (ready: readonly number[]) => T,
  ): Promise<T>;
  /**
   * The changing side's call, after it changed the shared state and found the waiter word set:
   * wakes whoever sleeps on it.
   */
  notify(seq: number, waiter: number, chunk: number): void;
  /**
   * Wakes every process whose bit is set in the `count` words of bits from u32 index `bits` (bit
   * `slot & 31` of word `slot >> 5` for process slot `slot`), taking the bits: for a condition
   * that several processes sleep on at once, each marking itself in `announce`. Call it after
   * `notify` of the condition's waiter word.
   */
  notifyMarked(bits: number, count: number, chunk: number): void;
  /** The segment is being deleted: every pending sleep fails with its check. */
  close(): void;
  /** How a spin over its watches gives way: see {@link GIVE_WAY_AFTER_MS}. */
  readonly way: GivesWay;
  /**
   * A new list of persistent watches for a `WaitSet` (a mapped segment's sleeper keeps them
   * registered; a private segment's looks at each at every take).
   */
  watchList(): WatchList;
}

/** The options of a call given none. */
export const NO_OPTIONS: SleepOptions = Object.freeze({});

/**
 * Validates a timeout: undefined (none), or a number of milliseconds >= 0 (`Infinity`: none).
 * TypeError for anything but a number (a string would be added, not summed, to a clock's time),
 * RangeError for NaN or a negative number.
 */
export function checkTimeout(timeoutMs: unknown): void {
  if (timeoutMs === undefined) return;
  if (typeof timeoutMs !== "number") throw new TypeError(`timeoutMs must be a number, got ${typeof timeoutMs}`);
  if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be >= 0, got ${timeoutMs}`);
}

/** The longest delay a timer can hold: a longer one fires at once (after 1 ms) in every runtime. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The timer of a wait's timeout: `fire` after `ms` (at once if it is past). None for a wait
 * without a timeout (`undefined`), nor for one too long for a timer (24.8 days or more, or
 * `Infinity`): such a wait waits as if it had none.
 */
export function timeoutTimer(ms: number | undefined, fire: () => void): ReturnType<typeof setTimeout> | undefined {
  return ms === undefined || ms > MAX_TIMER_MS ? undefined : setTimeout(fire, Math.max(0, ms));
}

/** Validates a signal: undefined, or an `AbortSignal`. */
export function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${signal === null ? "null" : typeof signal}`);
  }
}

/**
 * Validates a wait's options and returns them ({@link NO_OPTIONS} for undefined or null): the
 * same checks whether or not the call then waits. TypeError for a wrong type, RangeError for a
 * bad timeout or spin; a signal already aborted throws its reason, so that the call does nothing
 * (as `fetch`).
 */
export function checkSleepOptions(options: SleepOptions | null | undefined): SleepOptions {
  if (options === undefined || options === null) return NO_OPTIONS;
  if (typeof options !== "object") throw new TypeError(`options must be an object, got ${typeof options}`);
  const { timeoutMs, spinMicros, signal } = options;
  checkTimeout(timeoutMs);
  if (spinMicros !== undefined) {
    if (typeof spinMicros !== "number") throw new TypeError(`spinMicros must be a number, got ${typeof spinMicros}`);
    if (!(spinMicros >= 0 && spinMicros <= 1_000_000)) {
      throw new RangeError(`spinMicros must be 0 to 1000000, got ${spinMicros}`);
    }
  }
  checkSignal(signal);
  signal?.throwIfAborted();
  return options;
}

/** What {@link readyNow} returns when nothing is ready: one frozen array, no allocation per look. */
const NONE_READY: readonly number[] = Object.freeze([]);

/**
 * The indices of `watches` ready now, each checked first (a check throws for a freed or deleted
 * object); {@link NONE_READY} when none is (a wait looks several times, nearly always in vain).
 */
export function readyNow(watches: readonly Watch[]): readonly number[] {
  let ready: number[] | undefined;
  for (let i = 0; i < watches.length; i++) {
    watches[i].check();
    if (watches[i].ready()) (ready ??= []).push(i);
  }
  return ready ?? NONE_READY;
}

/**
 * The indices of `watches` ready now (each checked first), else those whose peer is dead
 * (`alive` answers for a tag), else an empty array.
 */
export function lookNow(watches: readonly Watch[], alive: (tag: number) => boolean): readonly number[] {
  const now = readyNow(watches);
  if (now.length > 0) return now;
  const ready: number[] = [];
  for (let i = 0; i < watches.length; i++) {
    const peer = watches[i].peer();
    if (peer !== 0 && !alive(peer)) ready.push(i);
  }
  return ready;
}

/**
 * A spin that has found nothing for this long asks whether this thread may run on one CPU only
 * ({@link GivesWay}), and if so gives way before each further look: the peer that would make it
 * ready then waits for this very CPU, and a spin that kept it would keep it until the kernel
 * preempts it, a time slice (milliseconds) each time. Where the thread may run on more CPUs it
 * does not give way: the peer most likely runs on another, and a yield would hand this CPU to
 * whatever else is busy for a whole time slice. A polling round trip between two cores of their
 * own takes a few microseconds, well within this.
 */
export const GIVE_WAY_AFTER_MS = 0.02;

/** How a spin lets another thread have its CPU: a segment's `Signaller` or `Sleeper`. */
export interface GivesWay {
  /**
   * Whether this thread may run on one CPU only (asked once per spin: a system call for a
   * mapped segment; false for a private one, which has no FFI to ask with).
   */
  alone(): boolean;
  /** Lets another thread waiting for this CPU run first (`sched_yield`; a no-op for a private segment). */
  giveWay(): void;
}

/**
 * Calls `look` until it returns true, for up to `micros` microseconds; whether it did. After
 * {@link GIVE_WAY_AFTER_MS} of nothing, it gives way through `way` before each further look when
 * the thread is alone on its CPU.
 */
export function spinUntil(look: () => boolean, micros: number, way: GivesWay): boolean {
  const start = performance.now();
  const end = start + micros / 1000;
  const givingFrom = start + GIVE_WAY_AFTER_MS;
  let giving: boolean | undefined;
  for (;;) {
    if (look()) return true;
    const now = performance.now();
    if (now >= end) return false;
    if (now >= givingFrom && (giving ??= way.alone())) way.giveWay();
  }
}

/** How long a wait with these (checked) options spins: its `spinMicros`, but no longer than its timeout. */
export function spinMicrosOf(options: SleepOptions): number {
  const { spinMicros = 0, timeoutMs } = options;
  return timeoutMs !== undefined && timeoutMs * 1000 < spinMicros ? timeoutMs * 1000 : spinMicros;
}

/** Polls `watches` for up to `micros` microseconds ({@link spinUntil}); the indices ready, or an empty array. */
export function spin(watches: readonly Watch[], micros: number, way: GivesWay): number[] {
  const ready: number[] = [];
  spinUntil(
    () => {
      for (let i = 0; i < watches.length; i++) if (watches[i].ready()) ready.push(i);
      return ready.length > 0;
    },
    micros,
    way,
  );
  return ready;
}
