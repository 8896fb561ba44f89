/**
 * What the library needs from the operating system, as one small interface. `deno.ts` and
 * `bun.ts` implement it over their runtime's FFI; `load.ts` picks one. Everything in `src/`
 * reaches the OS only through this interface. Failures throw {@link OsError}.
 *
 * @module
 */

export { OsError } from "./os_error.ts";

/** A live `mmap` of a file: one ArrayBuffer over the mapped bytes. */
export interface Mapping {
  /** The single ArrayBuffer over the mapping; detached by {@link Os.munmap}. */
  readonly buffer: ArrayBuffer;
  /** Mapped length in bytes. */
  readonly length: number;
}

/** The fields of `struct stat` the library reads. */
export interface FileStat {
  /** `st_size`: bytes. */
  readonly size: number;
  /** `st_mode`: type and permission bits. */
  readonly mode: number;
  /** `st_uid`: the owner. */
  readonly uid: number;
  /** `st_dev`: the device the file lives on. */
  readonly dev: number;
  /** `st_ino`: the file's inode number; with `dev`, which file this is. */
  readonly ino: number;
  /** `st_blocks`: 512-byte blocks allocated (less than `size` means holes: pages never reserved). */
  readonly blocks: number;
}

/** The outcome of a futex wait. */
export type FutexResult = "woken" | "timeout" | "mismatch" | "interrupted";

/** The operating-system calls the library uses. */
export interface Os {
  /** Which runtime's FFI backs this object. */
  readonly runtime: "deno" | "bun" | "node";
  /** `shm_open(name, flags, mode)`; returns the fd. */
  shmOpen(name: string, flags: number, mode: number): number;
  /** `shm_unlink(name)`. */
  shmUnlink(name: string): void;
  /** `memfd_create(name, flags)`; returns the fd. */
  memfdCreate(name: string, flags: number): number;
  /** `open(path, flags)`; returns the fd. */
  open(path: string, flags: number): number;
  /** `close(fd)`. */
  close(fd: number): void;
  /** `ftruncate(fd, size)`. */
  ftruncate(fd: number, size: number): void;
  /** `fstat(fd)`: size, mode, owner, device and inode. */
  fstat(fd: number): FileStat;
  /**
   * `lseek(fd, offset, SEEK_DATA)`: whether `offset` is in a hole (no page there yet: on a full
   * tmpfs, touching it through a mapping is a SIGBUS).
   */
  isHole(fd: number, offset: number): boolean;
  /**
   * `posix_fallocate(fd, 0, length)`: reserves every page now, so that a full tmpfs fails here
   * with ENOSPC instead of faulting (SIGBUS) on a later first touch of the mapping.
   */
  fallocate(fd: number, length: number): void;
  /**
   * `fcntl(fd, F_OFD_SETLK)` of a write lock on the one byte at `position`: true when taken,
   * false when another open file holds it. The kernel drops the lock when the holder dies.
   */
  lockByte(fd: number, position: number): boolean;
  /** `fcntl(fd, F_OFD_GETLK)`: whether another open file holds a lock on the byte at `position`. */
  byteLocked(fd: number, position: number): boolean;
  /** `geteuid()`. */
  geteuid(): number;
  /** `fcntl(fd, F_ADD_SEALS, seals)`. */
  addSeals(fd: number, seals: number): void;
  /** `fcntl(fd, F_GET_SEALS)`. */
  getSeals(fd: number): number;
  /** `mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`; MAP_FAILED throws. */
  mmap(fd: number, length: number): Mapping;
  /**
   * A further ArrayBuffer over the same mapped memory, for views handed to callers: whatever
   * a caller does to it (a `transfer()` detaches it), the mapping's own buffer stays usable.
   */
  lend(mapping: Mapping): ArrayBuffer;
  /** Whether any byte of `view` lies in `mapping`'s memory (through whichever buffer). */
  holds(mapping: Mapping, view: Uint8Array): boolean;
  /**
   * Detaches the mapping's ArrayBuffer and every lent one, then `munmap`s it. When a lent
   * buffer escaped (someone else detached it, so a moved copy may still point here), the range
   * is instead replaced by private zero pages (`MAP_FIXED`), so that the moved buffer can
   * neither fault nor reach a segment mapped later at the same address. Idempotent.
   */
  munmap(mapping: Mapping): void;
  /** `getpid()`. */
  getpid(): number;
  /** `kill(pid, 0)`: whether a process with that pid runs (EPERM counts; a zombie does not). */
  processAlive(pid: number): boolean;
  /** `usleep(microseconds)`: blocks the calling thread. */
  sleepMicroseconds(microseconds: number): void;
  /**
   * `sched_yield()`: lets another thread that waits for this CPU run first. Returns at once when
   * none waits.
   */
  yieldCpu(): void;
  /** `getrlimit(RLIMIT_NOFILE)`: how many fds the process may have open (the soft limit). */
  openFilesLimit(): number;
  /** How many CPUs the calling thread may run on: the count of `sched_getaffinity(0)`'s set. */
  cpusAllowed(): number;
  /**
   * `FUTEX_WAIT` on the 32-bit word at `byteOffset` of a shared mapping, while it holds
   * `expected`, for at most `timeoutMs` (forever when undefined). Blocks the calling thread.
   */
  futexWait(mapping: Mapping, byteOffset: number, expected: number, timeoutMs?: number): FutexResult;
  /** `FUTEX_WAKE` up to `count` waiters on the word at `byteOffset`; returns how many woke. */
  futexWake(mapping: Mapping, byteOffset: number, count: number): number;
  /**
   * `socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)` and `connect` to the Unix
   * socket `name`: an abstract-namespace name when it has no "/", else a file-system path.
   * Returns the fd. A name nobody listens on fails with ECONNREFUSED (or ENOENT), a listener
   * whose backlog is full with EAGAIN.
   */
  connectUnix(name: string, type?: "stream" | "seqpacket"): number;
  /**
   * `socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`, `bind` to `name` (abstract
   * when it has no "/") and `listen(backlog)`; returns the fd, for the runtime's reactor to watch.
   * A name in use fails with EADDRINUSE.
   */
  listenUnix(name: string, backlog: number, type?: "stream" | "seqpacket"): number;
  /** `accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC)`: the new fd, or -1 when nobody waits (EAGAIN). */
  accept(fd: number): number;
  /**
   * `sendmsg(fd, bytes (+ fds as SCM_RIGHTS), MSG_DONTWAIT | MSG_NOSIGNAL)`: bytes sent, or -1 when
   * the socket's buffer is full (EAGAIN). At most 4096 bytes and 4 fds.
   */
  sendPacket(fd: number, bytes: Uint8Array, fds?: readonly number[]): number;
  /**
   * `recvmsg(fd, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)` of one packet into `into`: its length (0 at the
   * end of the stream), every fd that came with it (the caller owns and closes them), and whether
   * data or fds were cut short; null when nothing waits (EAGAIN).
   */
  recvPacket(fd: number, into: Uint8Array): { length: number; fds: number[]; truncated: boolean } | null;
  /** `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`: who is at the other end, as the kernel saw it at connect. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /**
   * `getsockopt(fd, SOL_SOCKET, SO_TYPE)` and `SO_ACCEPTCONN`: the socket's type (`SOCK_STREAM`,
   * `SOCK_SEQPACKET`, ...) and whether it listens.
   */
  socketKind(fd: number): { type: number; listening: boolean };
  /** `unlink(path)`. */
  unlink(path: string): void;
  /**
   * `send(fd, bytes, MSG_DONTWAIT | MSG_NOSIGNAL)`: the bytes sent, or -1 when the socket's
   * buffer is full (EAGAIN). A peer that is gone fails with EPIPE or ECONNRESET, never SIGPIPE.
   */
  send(fd: number, bytes: Uint8Array): number;
  /** `pipe2(O_NONBLOCK | O_CLOEXEC)`: both ends, nonblocking. */
  pipe(): { read: number; write: number };
  /**
   * `poll(fds, 0 events, timeout 0)`: for each fd, whether the kernel reports it hung up, in error
   * or not open (POLLHUP, POLLERR, POLLNVAL): a socket whose peer closed, a pipe's write end
   * whose readers are gone. One system call, never blocks.
   */
  hungUp(fds: readonly number[]): boolean[];
  /** `socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`: two connected ends. */
  socketPair(): [number, number];
  /**
   * `write(fd, bytes)`: the bytes written, or -1 when the fd would block (EAGAIN). A pipe whose
   * reader is gone fails with EPIPE; the process must ignore SIGPIPE (see `ignoresSigpipe`).
   */
  write(fd: number, bytes: Uint8Array): number;
  /** `fcntl(fd, F_DUPFD_CLOEXEC)`: a second fd for the same open file. */
  dup(fd: number): number;
  /** `fcntl(fd, F_GETFL)`: the file's status flags (access mode, O_NONBLOCK, ...). */
  fileFlags(fd: number): number;
  /** `fcntl(fd, F_SETFL, flags)`. */
  setFileFlags(fd: number, flags: number): void;
  /** Whether SIGPIPE is ignored in this process (`sigaction`): then a write to a dead pipe only fails. */
  ignoresSigpipe(): boolean;
}
