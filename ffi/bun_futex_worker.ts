/**
 * A Bun Worker that blocks in FUTEX_WAIT for its parent, which cannot block without stopping
 * its event loop (Bun has no nonblocking FFI calls). The parent sends {id, address, expected,
 * timeoutMs}; the worker answers {id, result, errno} when the wait ends.
 *
 * @module
 */

import { bunBind, bunFfi } from "./bun.ts";
import { FUTEX_WAIT, SYS_FUTEX } from "./symbols.ts";

interface Request {
  id: number;
  address: number;
  expected: number;
  timeoutMs: number;
}

const ffi = bunFfi();
const lib = { symbols: bunBind(ffi, ["syscall", "__errno_location"]) };
const errnoAddress = lib.symbols.__errno_location() as number;
const timespec = new BigInt64Array(2);

const scope = globalThis as unknown as {
  onmessage: ((event: { data: Request }) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = ({ data }) => {
  const whole = Math.floor(data.timeoutMs / 1000);
  timespec[0] = BigInt(whole);
  timespec[1] = BigInt(Math.floor((data.timeoutMs - whole * 1000) * 1e6));
  const result = Number(lib.symbols.syscall(SYS_FUTEX, data.address, FUTEX_WAIT, data.expected, timespec, null, 0));
  scope.postMessage({ id: data.id, result, errno: result === 0 ? 0 : ffi.read.i32(errnoAddress, 0) });
};
