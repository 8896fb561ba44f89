/**
 * Which processes have a segment mapped, and which of them are still alive, without pids (which
 * the kernel reuses) and without /proc: each process holds an open-file-description lock on
 * one byte of the segment's file, which the kernel drops when the process dies. Layout and the
 * meaning of a tag: see "Process tags" in `layout.ts`.
 *
 * @module
 */

import type { Os } from "../../ffi/os.ts";
import { SegmentError } from "../errors.ts";
import {
  PRIVATE_TAG,
  PROC_ENTRY_SIZE,
  PROC_LOCK_BASE,
  PROC_PID,
  PROC_SLOTS,
  PROC_TABLE,
  PROC_TAG,
  TAG_GENERATIONS,
} from "../layout.ts";

/** This process's identity in a segment, and a way to tell whether another tag's holder lives. */
export interface Liveness {
  /** This process's tag in the segment. */
  readonly ownTag: number;
  /** Whether the process that holds `tag` is alive. */
  isAlive(tag: number): boolean;
  /** A short pause while another process holds something (a lock) we wait for. */
  pause(): void;
  /** The pid recorded for a tag, or 0. */
  pidOf(tag: number): number;
}

/** In a private segment every holder is a thread of this process: all share one tag and live. */
export const PRIVATE_LIVENESS: Liveness = {
  ownTag: PRIVATE_TAG,
  isAlive: (tag) => tag === PRIVATE_TAG, // anything else was written by no holder
  pause: () => {},
  pidOf: () => 0,
};

function slotWord(slot: number, field: number): number {
  return (PROC_TABLE + slot * PROC_ENTRY_SIZE + field) >>> 2;
}

/** Takes the lock byte of slot 0, the creator's, before the segment is formatted. */
export function lockCreatorSlot(os: Os, fd: number): void {
  if (!os.lockByte(fd, PROC_LOCK_BASE)) throw new SegmentError("corrupt", "a new segment's creator slot is taken");
}

/** Whether some process holds the creator's slot: a segment that is not ready yet is still being made. */
export function creatorAlive(os: Os, fd: number): boolean {
  return os.byteLocked(fd, PROC_LOCK_BASE);
}

/** The liveness of a mapped segment, over its process table and the lock bytes of `fd`. */
export class ProcessTable implements Liveness {
  readonly ownTag: number;
  readonly #os: Os;
  readonly #fd: number;
  readonly #u32: Uint32Array;

  /**
   * Claims a slot: slot 0 when `creator` (whose lock byte the creator already holds), otherwise
   * the first slot whose lock byte nobody holds. Throws when all slots are held.
   */
  constructor(os: Os, fd: number, u32: Uint32Array, pid: number, creator: boolean) {
    this.#os = os;
    this.#fd = fd;
    this.#u32 = u32;
    let slot = creator ? 0 : -1;
    for (let s = 1; slot < 0 && s < PROC_SLOTS; s++) if (os.lockByte(fd, PROC_LOCK_BASE + s)) slot = s;
    if (slot < 0) {
      throw new SegmentError("full", `all ${PROC_SLOTS} process slots of the segment are held by live processes`);
    }
    const previous = Atomics.load(u32, slotWord(slot, PROC_TAG));
    let generation = ((previous >>> 8) + 1) & TAG_GENERATIONS;
    if (generation === 0) generation = 1;
    this.ownTag = ((generation << 8) | slot) >>> 0;
    Atomics.store(u32, slotWord(slot, PROC_PID), pid);
    Atomics.store(u32, slotWord(slot, PROC_TAG), this.ownTag);
  }

  isAlive(tag: number): boolean {
    if (tag === this.ownTag) return true;
    if (tag === 0 || tag === PRIVATE_TAG || tag > 0x7fff_ffff) return false;
    const slot = tag & 0xff;
    if (Atomics.load(this.#u32, slotWord(slot, PROC_TAG)) !== tag) return false; // the slot was claimed again
    return this.#os.byteLocked(this.#fd, PROC_LOCK_BASE + slot);
  }

  pause(): void {
    this.#os.sleepMicroseconds(50);
  }

  pidOf(tag: number): number {
    const slot = tag & 0xff;
    return Atomics.load(this.#u32, slotWord(slot, PROC_TAG)) === tag
      ? Atomics.load(this.#u32, slotWord(slot, PROC_PID))
      : 0;
  }
}
