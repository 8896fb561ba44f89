/**
 * How many connections a process's doorbell and listeners' bells may hold. Anyone can connect
 * to an abstract Unix socket (no file, so no permission), and a watcher that kept every
 * connection could be run out of fds by any process: 400 connections held open took a process
 * limited to 128 fds to its limit. So each SegmentMain's watchers share one budget, a quarter of
 * the process's fd limit (from 16 to 4096); a connection beyond it makes room by dropping the
 * oldest connection of the process that holds the most. A legitimate waker holds one connection
 * per doorbell, and one that is dropped connects again at its next ring; its dropper counts the
 * drop as a ring, so that a byte left unread on it is not a wake-up lost.
 *
 * @module
 */

/** Fewest and most connections a budget allows. */
const FEWEST = 16;
const MOST = 4096;

/** One admitted connection. */
interface Entry {
  readonly pid: number;
  readonly drop: () => void;
}

/** The connection budget of one SegmentMain's doorbell and bells. */
export class Admission {
  /** Connections held at most. */
  readonly limit: number;
  /** Admitted connections, oldest first (a Map keeps insertion order). */
  readonly #entries = new Map<object, Entry>();
  /** Connections held per peer pid (-1: unknown). */
  readonly #perPid = new Map<number, number>();
  /** Connections dropped to make room, so far. */
  dropped = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`a connection budget must be at least 1, got ${limit}`);
    }
    this.limit = limit;
  }

  /** The budget for a process whose fd limit is `openFiles`: a quarter of it, from 16 to 4096. */
  static forFileLimit(openFiles: number): Admission {
    return new Admission(Math.max(FEWEST, Math.min(MOST, Math.floor(openFiles / 4))));
  }

  /** Connections held now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Admits a connection from process `pid` (-1 when unknown), first dropping what must go to
   * stay within the budget (their `drop` is called). `drop` closes this connection when it must
   * make room later. Returns the function to call when the connection closes (idempotent).
   */
  admit(pid: number, drop: () => void): () => void {
    while (this.#entries.size >= this.limit && this.#dropOne());
    const id = {};
    this.#entries.set(id, { pid, drop });
    this.#perPid.set(pid, (this.#perPid.get(pid) ?? 0) + 1);
    return () => this.#forget(id);
  }

  /** Drops the oldest connection of the process that holds the most; false when none is held. */
  #dropOne(): boolean {
    let pid = -1;
    let most = 0;
    for (const [candidate, count] of this.#perPid) {
      if (count > most) {
        most = count;
        pid = candidate;
      }
    }
    for (const [id, entry] of this.#entries) {
      if (entry.pid !== pid) continue;
      this.#forget(id);
      this.dropped++;
      try {
        entry.drop();
      } catch { /* closed already */ }
      return true;
    }
    return false;
  }

  #forget(id: object): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    const left = this.#perPid.get(entry.pid)! - 1;
    if (left === 0) this.#perPid.delete(entry.pid);
    else this.#perPid.set(entry.pid, left);
  }
}
