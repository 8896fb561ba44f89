/**
 * Sleeping on and waking a 32-bit word of a segment, across processes: the kernel's futex for
 * mapped segments (through the `Os`), `Atomics.wait`/`notify` for a private segment's
 * SharedArrayBuffer (shared with Workers of this process).
 *
 * @module
 */

import type { Mapping, Os } from "../../ffi/os.ts";
import type { GivesWay } from "./sleeper.ts";

/** Sleep and wake on a word of one segment; and how a spin over its words gives way. */
export interface Signaller extends GivesWay {
  /** Blocks this thread while the word at `byteOffset` holds `expected`, for at most `timeoutMs`. */
  waitSync(byteOffset: number, expected: number, timeoutMs: number): void;
  /** Wakes every sleeper on the word; returns how many woke. A system call: only when someone sleeps. */
  wake(byteOffset: number): number;
}

/** Futex waits on a mapped (shm or memfd) segment. */
export class FutexSignaller implements Signaller {
  readonly #os: Os;
  readonly #mapping: Mapping;
  constructor(os: Os, mapping: Mapping) {
    this.#os = os;
    this.#mapping = mapping;
  }
  waitSync(byteOffset: number, expected: number, timeoutMs: number): void {
    this.#os.futexWait(this.#mapping, byteOffset, expected, timeoutMs);
  }
  wake(byteOffset: number): number {
    return this.#os.futexWake(this.#mapping, byteOffset, 0x7fffffff);
  }
  alone(): boolean {
    try {
      return this.#os.cpusAllowed() === 1;
    } catch {
      return false; // a CPU set larger than the 1024 CPUs asked about: not one
    }
  }
  giveWay(): void {
    this.#os.yieldCpu();
  }
}

/** Atomics waits on a private segment's SharedArrayBuffer. */
export class AtomicsSignaller implements Signaller {
  readonly #i32: Int32Array;
  constructor(buffer: SharedArrayBuffer) {
    this.#i32 = new Int32Array(buffer);
  }
  waitSync(byteOffset: number, expected: number, timeoutMs: number): void {
    Atomics.wait(this.#i32, byteOffset >>> 2, expected, timeoutMs);
  }
  /** {@link waitSync} without blocking the event loop. */
  waitAsync(byteOffset: number, expected: number, timeoutMs: number): Promise<unknown> {
    const result = Atomics.waitAsync(this.#i32, byteOffset >>> 2, expected, timeoutMs);
    if (!result.async) return Promise.resolve(result.value);
    // An Atomics.waitAsync promise does not keep the event loop alive; a timer does.
    const keepAlive = setTimeout(() => {}, timeoutMs + 10);
    return result.value.finally(() => clearTimeout(keepAlive));
  }
  wake(byteOffset: number): number {
    return Atomics.notify(this.#i32, byteOffset >>> 2);
  }
  /** Unknown without the FFI, which a private segment does not need: false. */
  alone(): boolean {
    return false;
  }
  /** Nothing: `Atomics.wait` would sleep a timer's length. */
  giveWay(): void {}
}
