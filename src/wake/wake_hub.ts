/**
 * One process's (one SegmentMain's) side of waking through the event loop: its doorbell (a
 * listening abstract Unix socket watched by the runtime's reactor), the connections it keeps to
 * other processes' doorbells, and the liveness tick that runs while any wait is pending. The
 * per-segment logic is in `event_sleeper.ts`; the protocol in `layout.ts` ("Waking through the
 * event loop").
 *
 * @module
 */

import { Admission } from "../../ffi/admission.ts";
import type { Doorbell } from "../../ffi/doorbell.ts";
import type { Os } from "../../ffi/os.ts";
import { OsError } from "../../ffi/os.ts";
import { doorbellName, doorbellPipeGate } from "../layout.ts";
import { SegmentError } from "../errors.ts";
import { BellLine } from "./bell_line.ts";

/** How often pending waits look for dead peers (a death is seen within about this long). */
export const TICK_MS = 400;
/** Every this many ticks, every pending wait is re-checked in full (the net under lost events). */
export const FULL_CHECK_TICKS = 5;

/** What the hub drives in each segment that has waits pending. */
export interface HubMember {
  /** Drains this process's events in the segment and settles what they concern. */
  service(): void;
  /** The liveness tick: re-checks every pending wait and its peer. */
  tick(): void;
}

/** Opens a doorbell whose connections count against `admission`; `ffi/doorbell.ts` in production. */
export type OpenDoorbell = (
  os: Os,
  nameOf: (key: number) => string,
  onRing: () => void,
  gateOf: (name: string) => string,
  admission: Admission,
) => Promise<Doorbell>;

/** Lines kept before the first sweep for lines to processes that are gone. */
const SWEEP_MIN = 4;

/** errnos that say the doorbell's listener is gone. */
const GONE = new Set(["EPIPE", "ECONNRESET", "ENOTCONN", "ECONNREFUSED", "ENOENT"]);

/** The wake-up machinery of one SegmentMain. */
export class WakeHub {
  readonly #os: Os;
  readonly #open: OpenDoorbell;
  #doorbell: Promise<Doorbell> | undefined;
  #opened: Doorbell | undefined;
  /** Lines to other processes' doorbells (by key) and to listeners' bells (by socket name). */
  readonly #lines = new Map<number | string, BellLine>();
  /**
   * How many lines make the next new one sweep them all: twice as many as the last sweep left,
   * so that lines to processes that died (which nothing rings again) cost O(1) per line made.
   */
  #sweepAt = SWEEP_MIN;
  /** Whether rings may go through pipes (SIGPIPE ignored); asked at the first ring. */
  #pipeRings: boolean | undefined;
  /** The segments whose sleepers a ring services (an array: it is walked on every wake-up). */
  #members: HubMember[] = [];
  /** Others that want to hear our doorbell (a connection waiting for its handshake answer). */
  readonly #listeners = new Set<() => void>();
  #pending = 0;
  /** Whether the doorbell keeps the process alive now. */
  #reffed = false;
  /** Whether a microtask that lets go of the process if no wait is pending then is queued. */
  #letGoQueued = false;
  readonly #letGo = () => {
    this.#letGoQueued = false;
    if (this.#pending === 0 && this.#reffed) {
      this.#reffed = false;
      this.#opened?.unref();
    }
  };
  #tick: ReturnType<typeof setInterval> | undefined;
  #admission: Admission | undefined;
  #localScheduled = false;
  #closed = false;

  constructor(os: Os, open: OpenDoorbell) {
    this.#os = os;
    this.#open = open;
  }

  /** This process's doorbell, opened on first use. */
  doorbell(): Promise<Doorbell> {
    if (this.#closed) return Promise.reject(new SegmentError("deleted", "the SegmentMain was disposed"));
    return (this.#doorbell ??= this.#open(
      this.#os,
      doorbellName,
      () => this.#serviceAll(),
      doorbellPipeGate,
      this.admission(),
    ).then(
      (bell) => {
        if (this.#closed) bell.close();
        else {
          this.#opened = bell;
          if (this.#pending > 0) {
            bell.ref();
            this.#reffed = true;
          }
        }
        return bell;
      },
    ));
  }

  /**
   * The connection budget shared by the doorbell and the bells of this SegmentMain's listeners
   * (anyone may connect to an abstract socket; see `ffi/admission.ts`).
   */
  admission(): Admission {
    return this.#admission ??= Admission.forFileLimit(this.#os.openFilesLimit());
  }

  /** Whether `key` is this process's own doorbell. */
  isOwn(key: number): boolean {
    return this.#opened !== undefined && this.#opened.key === key;
  }

  /** A segment whose sleeper has waits pending (or may have). */
  add(member: HubMember): void {
    if (!this.#members.includes(member)) this.#members = [...this.#members, member];
  }

  remove(member: HubMember): void {
    this.#members = this.#members.filter((m) => m !== member);
  }

  /**
   * One pending wait more (+1) or fewer (-1): the doorbell keeps the process alive meanwhile.
   * When the last wait ends, the doorbell lets go in a microtask, and only if no wait began
   * meanwhile: a wait that ends and one that begins (every round trip) do not pay for a ref and
   * an unref (each an op in Deno).
   */
  pendingDelta(delta: number): void {
    const before = this.#pending;
    this.#pending += delta;
    if (before === 0 && this.#pending > 0) {
      if (!this.#reffed && this.#opened !== undefined) {
        this.#opened.ref();
        this.#reffed = true;
      }
      if (this.#tick === undefined) {
        // Runs until a tick finds nothing pending: a wait that ends and another that begins
        // (every round trip) do not pay for a timer each.
        this.#tick = setInterval(() => this.#tickAll(), TICK_MS);
        (this.#tick as { unref?: () => void }).unref?.();
      }
    } else if (before > 0 && this.#pending === 0 && this.#reffed && !this.#letGoQueued) {
      this.#letGoQueued = true;
      queueMicrotask(this.#letGo);
    }
  }

  /**
   * Rings the doorbell `key` of another process: one byte on a kept connection (a system call).
   * A doorbell nobody listens on any more is forgotten; the waits it would wake re-check at
   * their tick anyway, so a failed ring loses nothing for good.
   */
  ring(key: number): void {
    if (this.#closed) return;
    if (this.isOwn(key)) {
      this.local();
      return;
    }
    this.#ringAt(key, doorbellName);
  }

  /**
   * Rings the bell of the listener whose bell socket is `name` (a client's HELLO waits there), on
   * a connection kept like a doorbell's: a send, not a connect, an accept and a close per HELLO.
   * A bell nobody listens on is not rung (the listener also polls).
   */
  ringBell(name: string): void {
    if (!this.#closed) this.#ringAt(name, String);
  }

  /**
   * One byte on the kept connection `id` to the stream socket `nameOf(id)` (the name is made only
   * to connect); a connection its listener dropped is made again once.
   */
  #ringAt<K extends number | string>(id: K, nameOf: (id: K) => string): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      let line = this.#lines.get(id);
      try {
        if (line === undefined) {
          if (this.#lines.size >= this.admission().limit) this.#makeRoom();
          const name = nameOf(id);
          // A doorbell's pipe is asked for (a listener's bell has none).
          const gate = typeof id === "number" && this.#pipes() ? doorbellPipeGate(name) : undefined;
          line = BellLine.open(this.#os, name, gate);
          this.#lines.set(id, line);
          if (this.#lines.size >= this.#sweepAt) this.#sweep();
        }
        line.ring(); // a full buffer: the listener has bytes to read anyway
        return;
      } catch (error) {
        if (line !== undefined && this.#lines.get(id) === line) {
          this.#lines.delete(id);
          line.close();
        }
        if (!(error instanceof OsError) || !GONE.has(error.code) || error.call === "connect") return;
      }
    }
  }

  /**
   * Closes the lines whose doorbell is gone (its process died or closed it): one `poll` over
   * them all. Nothing rings a dead process's doorbell again, so without it a process whose
   * peers come and go would keep an fd (or two) per peer it ever rang.
   */
  #sweep(): void {
    const lines = [...this.#lines];
    let gone: boolean[] = [];
    try {
      gone = this.#os.hungUp(lines.map(([, line]) => line.fd));
    } catch { /* try again at the next sweep */ }
    lines.forEach(([id, line], i) => {
      if (!gone[i]) return;
      this.#lines.delete(id);
      line.close();
    });
    this.#sweepAt = Math.max(SWEEP_MIN, 2 * this.#lines.size);
  }

  /**
   * Closes the lines whose doorbell is gone, and if that leaves as many as the budget allows, the
   * oldest: the doorbells a process rings are named in shared memory, where a hostile peer could
   * name one after another (each listened on), and a line is an fd. A line closed here is made
   * again at its next ring.
   */
  #makeRoom(): void {
    this.#sweep();
    for (const [id, line] of this.#lines) {
      if (this.#lines.size < this.admission().limit) return;
      this.#lines.delete(id);
      line.close();
    }
  }

  /** Whether this process may ring through pipes: only when SIGPIPE is ignored (asked once). */
  #pipes(): boolean {
    if (this.#pipeRings === undefined) {
      try {
        this.#pipeRings = this.#os.ignoresSigpipe();
      } catch {
        this.#pipeRings = false;
      }
    }
    return this.#pipeRings;
  }

  /** An event for a sleeper of this process: serviced in a microtask, no system call. */
  local(): void {
    if (this.#localScheduled) return;
    this.#localScheduled = true;
    queueMicrotask(() => {
      this.#localScheduled = false;
      this.#serviceAll();
    });
  }

  #serviceAll(): void {
    const members = this.#members; // a member added or removed meanwhile makes a new array
    for (let i = 0; i < members.length; i++) members[i].service();
    if (this.#listeners.size !== 0) { for (const listener of this.#listeners) listener(); }
  }

  /** Calls `listener` whenever our doorbell rings, until the returned function is called. */
  onRing(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #tickAll(): void {
    if (this.#pending === 0) {
      clearInterval(this.#tick);
      this.#tick = undefined;
      return;
    }
    this.#opened?.recover(); // connections a stalled listener left waiting
    for (const member of this.#members) member.tick();
  }

  /** Closes the doorbell and every kept connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    this.#opened?.close();
    for (const line of this.#lines.values()) line.close();
    this.#lines.clear();
  }
}
