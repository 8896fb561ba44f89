/**
 * The error thrown when a system call fails: it names the call and the errno.
 *
 * @module
 */

import { getSystemErrorMap } from "node:util";

const ERRNO_NAMES: Readonly<Record<number, readonly [string, string]>> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  9: ["EBADF", "Bad file descriptor"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  14: ["EFAULT", "Bad address"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  22: ["EINVAL", "Invalid argument"],
  23: ["ENFILE", "Too many open files in system"],
  24: ["EMFILE", "Too many open files"],
  27: ["EFBIG", "File too large"],
  28: ["ENOSPC", "No space left on device"],
  32: ["EPIPE", "Broken pipe"],
  36: ["ENAMETOOLONG", "File name too long"],
  38: ["ENOSYS", "Function not implemented"],
  75: ["EOVERFLOW", "Value too large for defined data type"],
  98: ["EADDRINUSE", "Address already in use"],
  104: ["ECONNRESET", "Connection reset by peer"],
  107: ["ENOTCONN", "Transport endpoint is not connected"],
  110: ["ETIMEDOUT", "Connection timed out"],
  111: ["ECONNREFUSED", "Connection refused"],
};

/** The runtime's own table of errno names and texts (node:util), keyed by negative errno. */
function systemErrors(): Map<number, [string, string]> | undefined {
  try {
    return getSystemErrorMap() as Map<number, [string, string]>;
  } catch {
    return undefined;
  }
}
const SYSTEM_ERRORS = systemErrors();

function describe(errno: number): readonly [string, string] | undefined {
  return ERRNO_NAMES[errno] ?? SYSTEM_ERRORS?.get(-errno);
}

/** The symbolic name of an errno value, e.g. `ENOENT` for 2, `ELOOP` for 40. */
export function errnoName(errno: number): string {
  return describe(errno)?.[0] ?? `errno ${errno}`;
}

/** A failed system call: `call` is the libc function, `code` the errno name. */
export class OsError extends Error {
  /** The libc function that failed, e.g. `shm_open`. */
  readonly call: string;
  /** The errno value. */
  readonly errno: number;
  /** The errno name, e.g. `ENOENT`. */
  readonly code: string;

  /** The failure of `call` with `errno`; `detail` names what it was called on. */
  constructor(call: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    const text = describe(errno)?.[1] ?? "unknown error";
    super(`${call}: ${code} (${text})${detail ? `: ${detail}` : ""}`);
    this.name = "OsError";
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}
