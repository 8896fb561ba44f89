/**
 * A `node:worker_threads` worker that blocks in FUTEX_WAIT for its parent (Node has no
 * nonblocking FFI calls). The parent sends {id, address, expected, timeoutMs}; the worker
 * answers {id, result, errno} when the wait ends.
 *
 * @module
 */

import { nodeBind, nodeFfi } from "./node.ts";
import { FUTEX_WAIT, SYS_FUTEX } from "./symbols.ts";

interface Request {
  id: number;
  address: bigint;
  expected: number;
  timeoutMs: number;
}

const ffi = nodeFfi();
const lib = nodeBind(ffi, ["syscall", "__errno_location"]);
const errnoAddress = lib.__errno_location() as bigint;
const timespec = new BigInt64Array(2);
const port = ((globalThis as { process: { getBuiltinModule(id: string): unknown } }).process
  .getBuiltinModule("node:worker_threads") as {
    parentPort: { on(event: "message", listener: (data: Request) => void): void; postMessage(m: unknown): void };
  }).parentPort;

port.on("message", (data) => {
  const whole = Math.floor(data.timeoutMs / 1000);
  timespec[0] = BigInt(whole);
  timespec[1] = BigInt(Math.floor((data.timeoutMs - whole * 1000) * 1e6));
  const result = Number(
    lib.syscall(BigInt(SYS_FUTEX), data.address, FUTEX_WAIT, data.expected, timespec, null, 0),
  );
  port.postMessage({ id: data.id, result, errno: result === 0 ? 0 : ffi.getInt32(errnoAddress, 0) });
});
