/**
 * The seam between a runtime's FFI and the OS logic: `deno.ts` and `bun.ts` each provide a
 * {@link Native}, and {@link makeOs} turns it into the {@link Os} interface, so that error
 * handling, flag values and struct decoding are written once.
 *
 * @module
 */

import type { FileStat, FutexResult, Mapping, Os } from "./os.ts";
import { readFileSync } from "node:fs";
import { OsError } from "./os_error.ts";
import {
  AF_UNIX,
  CMSG_HEADER,
  F_ADD_SEALS,
  F_DUPFD_CLOEXEC,
  F_GET_SEALS,
  F_GETFL,
  F_OFD_GETLK,
  F_OFD_SETLK,
  F_SETFL,
  F_UNLCK,
  F_WRLCK,
  FLOCK_LEN_OFFSET,
  FLOCK_SIZE,
  FLOCK_START_OFFSET,
  FLOCK_TYPE_OFFSET,
  FUTEX_WAIT,
  FUTEX_WAKE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAX_PASSED_FDS,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  MSGHDR_CONTROL,
  MSGHDR_CONTROLLEN,
  MSGHDR_FLAGS,
  MSGHDR_IOV,
  MSGHDR_IOVLEN,
  MSGHDR_SIZE,
  O_CLOEXEC,
  O_NONBLOCK,
  POLLERR,
  POLLFD_REVENTS,
  POLLFD_SIZE,
  POLLHUP,
  POLLNVAL,
  PROT_READ,
  PROT_WRITE,
  RLIMIT_NOFILE,
  SCM_RIGHTS,
  SEEK_DATA,
  SIG_IGN,
  SIGACTION_SIZE,
  SIGPIPE,
  SO_ACCEPTCONN,
  SO_PEERCRED,
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCKADDR_UN_SIZE,
  SOL_SOCKET,
  STAT_BLOCKS_OFFSET,
  STAT_DEV_OFFSET,
  STAT_INO_OFFSET,
  STAT_MODE_OFFSET,
  STAT_SIZE,
  STAT_SIZE_OFFSET,
  STAT_UID_OFFSET,
  SYS_FUTEX,
} from "./symbols.ts";

/** An address as the runtime represents it (a Deno pointer object, a Bun number). */
export type Address = unknown;

/** A native call: numbers, bigints, typed arrays and addresses in; a number, bigint or address out. */
// deno-lint-ignore no-explicit-any
export type NativeFn = (...args: any[]) => any;

/** What a runtime adapter gives: the bound symbols and its way of handling addresses. */
export interface Native {
  readonly runtime: "deno" | "bun" | "node";
  readonly fns: {
    readonly [
      K in
        | "shm_open"
        | "shm_unlink"
        | "memfd_create"
        | "open"
        | "close"
        | "ftruncate"
        | "fstat"
        | "lseek"
        | "fcntl"
        | "fcntl_lock"
        | "posix_fallocate"
        | "geteuid"
        | "mmap"
        | "munmap"
        | "getpid"
        | "kill"
        | "usleep"
        | "sched_yield"
        | "sched_getaffinity"
        | "syscall"
        | "socket"
        | "connect"
        | "bind"
        | "listen"
        | "accept4"
        | "sendmsg"
        | "recvmsg"
        | "getsockopt"
        | "getrlimit"
        | "unlink"
        | "send"
        | "pipe2"
        | "socketpair"
        | "poll"
        | "write"
        | "sigaction"
    ]: NativeFn;
  };
  /** True when an `mmap` result is MAP_FAILED (or otherwise unusable). */
  isMapFailed(address: Address): boolean;
  /** One ArrayBuffer over `length` bytes at `address`. */
  arrayBuffer(address: Address, length: number): ArrayBuffer;
  /**
   * Whether the buffers `arrayBuffer` makes may be detached (`transfer(0)`). Not in Deno: there
   * a detached FFI buffer crashes a garbage-collector thread later, about one process in 30.
   */
  readonly detachable: boolean;
  /** `address + bytes`. */
  offset(address: Address, bytes: number): Address;
  /** An address as a number (user-space addresses fit a double). */
  addressValue(address: Address): number;
  /** The address of a typed array's first byte. */
  addressOf(view: Uint8Array): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of a string, for `const char *` parameters. */
export function cString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

class NativeMapping implements Mapping {
  readonly buffer: ArrayBuffer;
  readonly length: number;
  readonly address: Address;
  /** Buffers over the same memory handed out by `lend`. */
  readonly lent: ArrayBuffer[] = [];
  unmapped = false;
  constructor(buffer: ArrayBuffer, length: number, address: Address) {
    this.buffer = buffer;
    this.length = length;
    this.address = address;
  }
}

function asNativeMapping(mapping: Mapping): NativeMapping {
  if (!(mapping instanceof NativeMapping)) throw new TypeError("not a mapping made by this Os");
  return mapping;
}

function timespec(timeoutMs: number | undefined): Uint8Array | null {
  if (timeoutMs === undefined) return null;
  if (!(timeoutMs >= 0)) throw new RangeError(`timeout must be >= 0 ms, got ${timeoutMs}`);
  const ts = new Uint8Array(16);
  const view = new DataView(ts.buffer);
  const whole = Math.floor(timeoutMs / 1000);
  view.setBigInt64(0, BigInt(whole), true);
  view.setBigInt64(8, BigInt(Math.floor((timeoutMs - whole * 1000) * 1e6)), true);
  return ts;
}

/**
 * Whether a process has exited and waits to be reaped: kill(pid, 0) still succeeds on it, but
 * it runs no more. Read from /proc; where that cannot be read, the process counts as running.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2) === "Z";
  } catch {
    return false;
  }
}

const EAGAIN = 11;
const EACCES = 13;
const EINTR = 4;
const ETIMEDOUT = 110;
const EPERM = 1;
const ENXIO = 6;

/** A futex wait's result and errno as a {@link FutexResult}. */
export function futexOutcome(result: number, errno: number): FutexResult {
  if (result === 0) return "woken";
  if (errno === EAGAIN) return "mismatch";
  if (errno === ETIMEDOUT) return "timeout";
  if (errno === EINTR) return "interrupted";
  throw new OsError("futex", errno);
}

function checkWord(mapping: NativeMapping, byteOffset: number): void {
  if (mapping.unmapped) throw new TypeError("futex on an unmapped mapping");
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset + 4 > mapping.length || byteOffset % 4 !== 0) {
    throw new RangeError(`futex word offset ${byteOffset} is not an aligned word of the mapping`);
  }
}

/**
 * A `struct sockaddr_un` for `name` and its length: an abstract name (no "/") starts with a NUL
 * byte and is not NUL-terminated; a path is.
 */
export function sockaddrUn(name: string): { bytes: Uint8Array; length: number } {
  const path = new TextEncoder().encode(name);
  const abstract = !name.includes("/");
  const length = 2 + path.length + 1;
  if (path.length === 0 || length > SOCKADDR_UN_SIZE || path.includes(0)) {
    throw new RangeError(
      `a Unix socket name must be 1 to ${SOCKADDR_UN_SIZE - 3} bytes without NUL, got ${JSON.stringify(name)}`,
    );
  }
  const bytes = new Uint8Array(SOCKADDR_UN_SIZE);
  bytes[0] = AF_UNIX; // sa_family, little-endian u16
  bytes.set(path, abstract ? 3 : 2);
  return { bytes, length };
}

/** Largest packet `sendPacket`/`recvPacket` move. */
export const PACKET_MAX = 4096;
const IOV_AT = 64;
const CMSG_AT = 128;
const CMSG_SPACE = CMSG_HEADER + 8 * ((MAX_PASSED_FDS * 4 + 7) >> 3);
const PACKET_DATA = 256;

/** Builds the {@link Os} over a runtime adapter. */
export function makeOs(native: Native): Os {
  const f = native.fns;
  // Placeholder ranges whose buffers are all collected go back to the kernel.
  const unmapWhenCollected = new FinalizationRegistry<{ count: number; address: Address; length: number }>(
    (left) => {
      if (--left.count === 0) f.munmap(left.address, BigInt(left.length));
    },
  );
  const fail = (call: string, detail?: string): never => {
    throw new OsError(call, native.errno(), detail);
  };
  const num = (value: number | bigint): number => Number(value);
  const statBuffer = new Uint8Array(STAT_SIZE);
  // One off-heap scratch area for sendmsg/recvmsg: msghdr, iovec, control and data, at fixed
  // offsets of one ArrayBuffer that never moves.
  const scratch = new Uint8Array(PACKET_DATA + PACKET_MAX);
  const scratchView = new DataView(scratch.buffer);
  const flock = new Uint8Array(FLOCK_SIZE);
  /** A cpu_set_t of 1024 CPUs (glibc's size). */
  const cpuMask = new Uint8Array(128);
  const flockView = new DataView(flock.buffer);
  /** Fills `flock` for a write lock on one byte at `position`; l_pid must be 0 for OFD locks. */
  const lockOf = (position: number): Uint8Array => {
    if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`bad lock position ${position}`);
    flock.fill(0);
    flockView.setInt16(FLOCK_TYPE_OFFSET, F_WRLCK, true);
    flockView.setBigInt64(FLOCK_START_OFFSET, BigInt(position), true);
    flockView.setBigInt64(FLOCK_LEN_OFFSET, 1n, true);
    return flock;
  };

  const os: Os = {
    runtime: native.runtime,
    shmOpen(name, flags, mode) {
      const fd = f.shm_open(cString(name), flags, mode);
      return fd < 0 ? fail("shm_open", name) : fd;
    },
    shmUnlink(name) {
      if (f.shm_unlink(cString(name)) !== 0) fail("shm_unlink", name);
    },
    memfdCreate(name, flags) {
      const fd = f.memfd_create(cString(name), flags);
      return fd < 0 ? fail("memfd_create", name) : fd;
    },
    open(path, flags) {
      const fd = f.open(cString(path), flags);
      return fd < 0 ? fail("open", path) : fd;
    },
    close(fd) {
      if (f.close(fd) !== 0) fail("close");
    },
    ftruncate(fd, size) {
      if (f.ftruncate(fd, BigInt(size)) !== 0) fail("ftruncate");
    },
    fstat(fd): FileStat {
      if (f.fstat(fd, statBuffer) !== 0) fail("fstat");
      const view = new DataView(statBuffer.buffer);
      return {
        size: num(view.getBigInt64(STAT_SIZE_OFFSET, true)),
        mode: view.getUint32(STAT_MODE_OFFSET, true),
        uid: view.getUint32(STAT_UID_OFFSET, true),
        dev: num(view.getBigUint64(STAT_DEV_OFFSET, true)),
        ino: num(view.getBigUint64(STAT_INO_OFFSET, true)),
        blocks: num(view.getBigInt64(STAT_BLOCKS_OFFSET, true)),
      };
    },
    isHole(fd, offset) {
      const next = f.lseek(fd, BigInt(offset), SEEK_DATA);
      if (num(next) >= 0) return num(next) !== offset;
      const errno = native.errno();
      if (errno === ENXIO) return true; // no data at or after it
      throw new OsError("lseek(SEEK_DATA)", errno);
    },
    fallocate(fd, length) {
      const error = f.posix_fallocate(fd, 0n, BigInt(length));
      if (error !== 0) throw new OsError("posix_fallocate", error);
    },
    lockByte(fd, position) {
      if (f.fcntl_lock(fd, F_OFD_SETLK, lockOf(position)) === 0) return true;
      const errno = native.errno();
      if (errno === EAGAIN || errno === EACCES) return false;
      throw new OsError("fcntl(F_OFD_SETLK)", errno);
    },
    byteLocked(fd, position) {
      if (f.fcntl_lock(fd, F_OFD_GETLK, lockOf(position)) !== 0) fail("fcntl(F_OFD_GETLK)");
      return flockView.getInt16(FLOCK_TYPE_OFFSET, true) !== F_UNLCK;
    },
    geteuid() {
      return f.geteuid();
    },
    addSeals(fd, seals) {
      if (f.fcntl(fd, F_ADD_SEALS, seals) !== 0) fail("fcntl(F_ADD_SEALS)");
    },
    getSeals(fd) {
      const seals = f.fcntl(fd, F_GET_SEALS, 0);
      return seals < 0 ? fail("fcntl(F_GET_SEALS)") : seals;
    },
    mmap(fd, length) {
      if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`bad mapping length ${length}`);
      const address = f.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      if (native.isMapFailed(address)) fail("mmap");
      return new NativeMapping(native.arrayBuffer(address, length), length, address);
    },
    lend(mapping) {
      const m = asNativeMapping(mapping);
      if (m.unmapped) throw new TypeError("lend of an unmapped mapping");
      const buffer = native.arrayBuffer(m.address, m.length);
      m.lent.push(buffer);
      return buffer;
    },
    holds(mapping, view) {
      const m = asNativeMapping(mapping);
      if (m.unmapped || view.byteLength === 0) return false;
      const start = native.addressOf(view);
      const base = native.addressValue(m.address);
      return start < base + m.length && start + view.byteLength > base;
    },
    munmap(mapping) {
      const m = asNativeMapping(mapping);
      if (m.unmapped) return;
      m.unmapped = true;
      // A buffer detached by someone else may live on, moved, over these addresses.
      const escaped = m.buffer.detached || m.lent.some((b) => b.detached);
      const placeholder = () => {
        // Private zero pages in place of the segment: a stale view reads zeros, cannot fault,
        // and cannot reach whatever the kernel would map at these addresses next.
        const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
        const r = f.mmap(m.address, BigInt(m.length), PROT_READ | PROT_WRITE, flags, -1, 0n);
        if (native.isMapFailed(r)) fail("mmap(MAP_FIXED)");
      };
      if (!native.detachable) {
        // The buffers stay as they are, over zero pages, until the last of them is collected;
        // then nothing can reach the addresses and they are given back.
        placeholder();
        const buffers = [m.buffer, ...m.lent].filter((b) => !b.detached);
        m.lent.length = 0;
        if (!escaped && buffers.length > 0) {
          const left = { count: buffers.length, address: m.address, length: m.length };
          for (const buffer of buffers) unmapWhenCollected.register(buffer, left);
        }
        return;
      }
      // Detach first: a stale view then throws instead of touching unmapped memory.
      for (const buffer of [m.buffer, ...m.lent]) if (!buffer.detached) buffer.transfer(0);
      m.lent.length = 0;
      if (escaped) return placeholder();
      if (f.munmap(m.address, BigInt(m.length)) !== 0) fail("munmap");
    },
    getpid() {
      return f.getpid();
    },
    processAlive(pid) {
      if (!Number.isInteger(pid) || pid <= 0) return false;
      if (f.kill(pid, 0) !== 0) return native.errno() === EPERM;
      return !isZombie(pid);
    },
    sleepMicroseconds(microseconds) {
      f.usleep(Math.max(0, Math.min(0xffffffff, Math.floor(microseconds))));
    },
    yieldCpu() {
      f.sched_yield();
    },
    openFilesLimit() {
      const limits = new BigUint64Array(2);
      if (f.getrlimit(RLIMIT_NOFILE, new Uint8Array(limits.buffer)) !== 0) fail("getrlimit");
      return limits[0] > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(limits[0]);
    },
    cpusAllowed() {
      if (f.sched_getaffinity(0, BigInt(cpuMask.length), cpuMask) !== 0) fail("sched_getaffinity");
      let count = 0;
      for (let i = 0; i < cpuMask.length; i++) for (let byte = cpuMask[i]; byte !== 0; byte &= byte - 1) count++;
      return count;
    },
    futexWait(mapping, byteOffset, expected, timeoutMs) {
      const m = asNativeMapping(mapping);
      checkWord(m, byteOffset);
      const r = num(
        f.syscall(
          BigInt(SYS_FUTEX),
          native.offset(m.address, byteOffset),
          FUTEX_WAIT,
          expected | 0,
          timespec(timeoutMs),
          null,
          0,
        ),
      );
      return futexOutcome(r, r === 0 ? 0 : native.errno());
    },
    futexWake(mapping, byteOffset, count) {
      const m = asNativeMapping(mapping);
      checkWord(m, byteOffset);
      const r = num(
        f.syscall(BigInt(SYS_FUTEX), native.offset(m.address, byteOffset), FUTEX_WAKE, count, null, null, 0),
      );
      return r < 0 ? fail("futex(FUTEX_WAKE)") : r;
    },
    connectUnix(name, type = "stream") {
      const address = sockaddrUn(name);
      const kind = type === "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM;
      const fd = f.socket(AF_UNIX, kind | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) fail("socket");
      if (f.connect(fd, address.bytes, address.length) !== 0) {
        const errno = native.errno();
        f.close(fd);
        throw new OsError("connect", errno, name);
      }
      return fd;
    },
    listenUnix(name, backlog, type = "stream") {
      const address = sockaddrUn(name);
      const kind = type === "seqpacket" ? SOCK_SEQPACKET : SOCK_STREAM;
      const fd = f.socket(AF_UNIX, kind | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) fail("socket");
      if (f.bind(fd, address.bytes, address.length) !== 0 || f.listen(fd, backlog) !== 0) {
        const errno = native.errno();
        f.close(fd);
        throw new OsError("bind", errno, name);
      }
      return fd;
    },
    accept(fd) {
      const conn = f.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (conn >= 0) return conn;
      const errno = native.errno();
      if (errno === EAGAIN) return -1;
      throw new OsError("accept4", errno);
    },
    sendPacket(fd, bytes, fds = []) {
      if (bytes.length > PACKET_MAX) throw new RangeError(`a packet carries at most ${PACKET_MAX} bytes`);
      if (fds.length > MAX_PASSED_FDS) throw new RangeError(`a packet carries at most ${MAX_PASSED_FDS} fds`);
      scratch.fill(0, 0, PACKET_DATA);
      scratch.set(bytes, PACKET_DATA);
      const base = BigInt(native.addressOf(scratch));
      scratchView.setBigUint64(IOV_AT, base + BigInt(PACKET_DATA), true);
      scratchView.setBigUint64(IOV_AT + 8, BigInt(bytes.length), true);
      scratchView.setBigUint64(MSGHDR_IOV, base + BigInt(IOV_AT), true);
      scratchView.setBigUint64(MSGHDR_IOVLEN, 1n, true);
      if (fds.length > 0) {
        const length = CMSG_HEADER + fds.length * 4;
        scratchView.setBigUint64(CMSG_AT, BigInt(length), true);
        scratchView.setInt32(CMSG_AT + 8, SOL_SOCKET, true);
        scratchView.setInt32(CMSG_AT + 12, SCM_RIGHTS, true);
        fds.forEach((passed, i) => scratchView.setInt32(CMSG_AT + CMSG_HEADER + i * 4, passed, true));
        scratchView.setBigUint64(MSGHDR_CONTROL, base + BigInt(CMSG_AT), true);
        scratchView.setBigUint64(MSGHDR_CONTROLLEN, BigInt((length + 7) & ~7), true);
      }
      const n = num(f.sendmsg(fd, scratch.subarray(0, MSGHDR_SIZE), MSG_DONTWAIT | MSG_NOSIGNAL));
      if (n >= 0) return n;
      const errno = native.errno();
      if (errno === EAGAIN) return -1;
      throw new OsError("sendmsg", errno);
    },
    recvPacket(fd, into) {
      const max = Math.min(into.length, PACKET_MAX);
      scratch.fill(0, 0, PACKET_DATA);
      const base = BigInt(native.addressOf(scratch));
      scratchView.setBigUint64(IOV_AT, base + BigInt(PACKET_DATA), true);
      scratchView.setBigUint64(IOV_AT + 8, BigInt(max), true);
      scratchView.setBigUint64(MSGHDR_IOV, base + BigInt(IOV_AT), true);
      scratchView.setBigUint64(MSGHDR_IOVLEN, 1n, true);
      scratchView.setBigUint64(MSGHDR_CONTROL, base + BigInt(CMSG_AT), true);
      scratchView.setBigUint64(MSGHDR_CONTROLLEN, BigInt(CMSG_SPACE), true);
      const n = num(f.recvmsg(fd, scratch.subarray(0, MSGHDR_SIZE), MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
      if (n < 0) {
        const errno = native.errno();
        if (errno === EAGAIN) return null;
        throw new OsError("recvmsg", errno);
      }
      // Every fd that arrived is returned (the caller owns and must close them), whatever else is wrong.
      const fds: number[] = [];
      const controlLength = Number(scratchView.getBigUint64(MSGHDR_CONTROLLEN, true));
      let at = 0;
      while (at + CMSG_HEADER <= controlLength && at + CMSG_HEADER <= CMSG_SPACE) {
        const length = Number(scratchView.getBigUint64(CMSG_AT + at, true));
        if (length < CMSG_HEADER || at + length > CMSG_SPACE) break;
        if (
          scratchView.getInt32(CMSG_AT + at + 8, true) === SOL_SOCKET &&
          scratchView.getInt32(CMSG_AT + at + 12, true) === SCM_RIGHTS
        ) {
          for (let i = CMSG_HEADER; i + 4 <= length; i += 4) fds.push(scratchView.getInt32(CMSG_AT + at + i, true));
        }
        at += (length + 7) & ~7;
      }
      const flags = scratchView.getInt32(MSGHDR_FLAGS, true);
      into.set(scratch.subarray(PACKET_DATA, PACKET_DATA + Math.min(n, max)));
      return { length: n, fds, truncated: (flags & (MSG_TRUNC | MSG_CTRUNC)) !== 0 };
    },
    peerCredentials(fd) {
      const cred = new Uint8Array(12);
      const length = new Uint32Array([12]);
      if (f.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, new Uint8Array(length.buffer)) !== 0) fail("getsockopt");
      const view = new DataView(cred.buffer);
      return { pid: view.getInt32(0, true), uid: view.getUint32(4, true), gid: view.getUint32(8, true) };
    },
    socketKind(fd) {
      const value = new Int32Array(1);
      const length = new Uint32Array(1);
      const option = (name: number) => {
        length[0] = 4;
        if (f.getsockopt(fd, SOL_SOCKET, name, new Uint8Array(value.buffer), new Uint8Array(length.buffer)) !== 0) {
          fail("getsockopt");
        }
        return value[0];
      };
      return { type: option(SO_TYPE), listening: option(SO_ACCEPTCONN) !== 0 };
    },
    unlink(path) {
      if (f.unlink(cString(path)) !== 0) fail("unlink", path);
    },
    send(fd, bytes) {
      const n = num(f.send(fd, bytes, BigInt(bytes.length), MSG_DONTWAIT | MSG_NOSIGNAL));
      if (n >= 0) return n;
      const errno = native.errno();
      if (errno === EAGAIN) return -1;
      throw new OsError("send", errno);
    },
    pipe() {
      const ends = new Int32Array(2);
      if (f.pipe2(new Uint8Array(ends.buffer), O_NONBLOCK | O_CLOEXEC) !== 0) fail("pipe2");
      return { read: ends[0], write: ends[1] };
    },
    hungUp(fds) {
      const table = new DataView(new ArrayBuffer(fds.length * POLLFD_SIZE));
      fds.forEach((fd, i) => table.setInt32(i * POLLFD_SIZE, fd, true)); // events 0: only what is always reported
      if (fds.length > 0 && f.poll(new Uint8Array(table.buffer), BigInt(fds.length), 0) < 0) fail("poll");
      return fds.map((_, i) =>
        (table.getInt16(i * POLLFD_SIZE + POLLFD_REVENTS, true) & (POLLERR | POLLHUP | POLLNVAL)) !== 0
      );
    },
    socketPair() {
      const ends = new Int32Array(2);
      if (f.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, new Uint8Array(ends.buffer)) !== 0) {
        fail("socketpair");
      }
      return [ends[0], ends[1]];
    },
    write(fd, bytes) {
      const n = num(f.write(fd, bytes, BigInt(bytes.length)));
      if (n >= 0) return n;
      const errno = native.errno();
      if (errno === EAGAIN) return -1;
      throw new OsError("write", errno);
    },
    dup(fd) {
      const copy = f.fcntl(fd, F_DUPFD_CLOEXEC, 0);
      return copy < 0 ? fail("fcntl(F_DUPFD_CLOEXEC)") : copy;
    },
    fileFlags(fd) {
      const flags = f.fcntl(fd, F_GETFL, 0);
      return flags < 0 ? fail("fcntl(F_GETFL)") : flags;
    },
    setFileFlags(fd, flags) {
      if (f.fcntl(fd, F_SETFL, flags) !== 0) fail("fcntl(F_SETFL)");
    },
    ignoresSigpipe() {
      const old = new Uint8Array(SIGACTION_SIZE);
      if (f.sigaction(SIGPIPE, null, old) !== 0) fail("sigaction");
      return new DataView(old.buffer).getBigUint64(0, true) === BigInt(SIG_IGN);
    },
  };
  return os;
}
