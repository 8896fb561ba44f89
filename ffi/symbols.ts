/**
 * The libc symbols this library uses, declared once as data. Each entry gives the C signature
 * it binds, its parameter kinds and its result kind in a runtime-neutral vocabulary that
 * `deno.ts` and `bun.ts` translate to their own FFI type names.
 *
 * @module
 */

/** A parameter or result kind, independent of the runtime. */
export type NativeKind =
  | "i32" // int, pid_t, mode_t
  | "u32" // unsigned int, useconds_t
  | "i64" // off_t, long
  | "usize" // size_t
  | "buffer" // const char *, struct stat *: a typed array passed in
  | "pointer" // void *: an address
  | "void";

/** One libc function: its C signature, parameters and result. */
export interface SymbolSpec {
  /** The C prototype, for the reader. */
  readonly c: string;
  readonly args: readonly NativeKind[];
  readonly ret: NativeKind;
  /** The libc name when the key is an alias (e.g. a nonblocking twin). */
  readonly name?: string;
}

/** Everything the library needs from libc. */
export const LIBC_SYMBOLS = {
  shm_open: { c: "int shm_open(const char *name, int oflag, mode_t mode)", args: ["buffer", "i32", "u32"], ret: "i32" },
  shm_unlink: { c: "int shm_unlink(const char *name)", args: ["buffer"], ret: "i32" },
  memfd_create: { c: "int memfd_create(const char *name, unsigned int flags)", args: ["buffer", "u32"], ret: "i32" },
  open: { c: "int open(const char *path, int flags)", args: ["buffer", "i32"], ret: "i32" },
  close: { c: "int close(int fd)", args: ["i32"], ret: "i32" },
  ftruncate: { c: "int ftruncate(int fd, off_t length)", args: ["i32", "i64"], ret: "i32" },
  fstat: { c: "int fstat(int fd, struct stat *buf)", args: ["i32", "buffer"], ret: "i32" },
  lseek: { c: "off_t lseek(int fd, off_t offset, int whence)", args: ["i32", "i64", "i32"], ret: "i64" },
  fcntl: { c: "int fcntl(int fd, int cmd, int arg)", args: ["i32", "i32", "i32"], ret: "i32" },
  fcntl_lock: {
    c: "int fcntl(int fd, int cmd, struct flock *lock)",
    name: "fcntl",
    args: ["i32", "i32", "buffer"],
    ret: "i32",
  },
  posix_fallocate: {
    c: "int posix_fallocate(int fd, off_t offset, off_t len) /* returns the error number */",
    args: ["i32", "i64", "i64"],
    ret: "i32",
  },
  geteuid: { c: "uid_t geteuid(void)", args: [], ret: "u32" },
  mmap: {
    c: "void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)",
    args: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    ret: "pointer",
  },
  munmap: { c: "int munmap(void *addr, size_t length)", args: ["pointer", "usize"], ret: "i32" },
  getpid: { c: "pid_t getpid(void)", args: [], ret: "i32" },
  kill: { c: "int kill(pid_t pid, int sig)", args: ["i32", "i32"], ret: "i32" },
  usleep: { c: "int usleep(useconds_t usec)", args: ["u32"], ret: "i32" },
  sched_yield: { c: "int sched_yield(void)", args: [], ret: "i32" },
  sched_getaffinity: {
    c: "int sched_getaffinity(pid_t pid, size_t cpusetsize, cpu_set_t *mask)",
    args: ["i32", "usize", "buffer"],
    ret: "i32",
  },
  __errno_location: { c: "int *__errno_location(void)", args: [], ret: "pointer" },
  syscall: {
    c: "long syscall(SYS_futex, uint32_t *uaddr, int op, uint32_t val, const struct timespec *timeout, " +
      "uint32_t *uaddr2, uint32_t val3)",
    args: ["i64", "pointer", "i32", "i32", "buffer", "pointer", "i32"],
    ret: "i64",
  },
  socket: { c: "int socket(int domain, int type, int protocol)", args: ["i32", "i32", "i32"], ret: "i32" },
  connect: {
    c: "int connect(int fd, const struct sockaddr *addr, socklen_t addrlen)",
    args: ["i32", "buffer", "u32"],
    ret: "i32",
  },
  bind: {
    c: "int bind(int fd, const struct sockaddr *addr, socklen_t addrlen)",
    args: ["i32", "buffer", "u32"],
    ret: "i32",
  },
  listen: { c: "int listen(int fd, int backlog)", args: ["i32", "i32"], ret: "i32" },
  accept4: {
    c: "int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)",
    args: ["i32", "pointer", "pointer", "i32"],
    ret: "i32",
  },
  sendmsg: {
    c: "ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)",
    args: ["i32", "buffer", "i32"],
    ret: "i64",
  },
  recvmsg: { c: "ssize_t recvmsg(int fd, struct msghdr *msg, int flags)", args: ["i32", "buffer", "i32"], ret: "i64" },
  getrlimit: { c: "int getrlimit(int resource, struct rlimit *rlim)", args: ["i32", "buffer"], ret: "i32" },
  getsockopt: {
    c: "int getsockopt(int fd, int level, int name, void *value, socklen_t *length)",
    args: ["i32", "i32", "i32", "buffer", "buffer"],
    ret: "i32",
  },
  unlink: { c: "int unlink(const char *path)", args: ["buffer"], ret: "i32" },
  send: {
    c: "ssize_t send(int fd, const void *buf, size_t len, int flags)",
    args: ["i32", "buffer", "usize", "i32"],
    ret: "i64",
  },
  pipe2: { c: "int pipe2(int pipefd[2], int flags)", args: ["buffer", "i32"], ret: "i32" },
  poll: { c: "int poll(struct pollfd *fds, nfds_t nfds, int timeout)", args: ["buffer", "usize", "i32"], ret: "i32" },
  socketpair: {
    c: "int socketpair(int domain, int type, int protocol, int sv[2])",
    args: ["i32", "i32", "i32", "buffer"],
    ret: "i32",
  },
  write: { c: "ssize_t write(int fd, const void *buf, size_t count)", args: ["i32", "buffer", "usize"], ret: "i64" },
  sigaction: {
    c: "int sigaction(int signum, const struct sigaction *act, struct sigaction *oldact)",
    args: ["i32", "pointer", "buffer"],
    ret: "i32",
  },
} as const satisfies Record<string, SymbolSpec>;

/** The names of the symbols above. */
export type LibcSymbol = keyof typeof LIBC_SYMBOLS;

/** Linux x86_64 / aarch64 constants used with the symbols above. */
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_CLOEXEC = 0o2000000;
export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_NOFOLLOW = 0o400000;
/** The access-mode bits of a file's status flags (`O_RDONLY`, `O_WRONLY`, `O_RDWR`). */
export const O_ACCMODE = 0o3;
export const F_GETFL = 3;
export const F_SETFL = 4;
/** `st_mode & S_IFMT` of a pipe or FIFO. */
export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;
/** `st_mode & S_IFMT` of a socket. */
export const S_IFSOCK = 0o140000;
export const SIGPIPE = 13;
/** sizeof(struct sigaction) (x86_64 and aarch64 glibc); its handler is the first 8 bytes. */
export const SIGACTION_SIZE = 152;
export const SIG_IGN = 1;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
export const F_ADD_SEALS = 1033;
export const F_DUPFD_CLOEXEC = 1030;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
/** Open-file-description locks: held per open file, dropped by the kernel when the holder dies. */
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** sizeof(struct flock) and its fields (x86_64): short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid. */
export const FLOCK_SIZE = 32;
export const FLOCK_TYPE_OFFSET = 0;
export const FLOCK_START_OFFSET = 8;
export const FLOCK_LEN_OFFSET = 16;
export const SYS_FUTEX = 202;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const SO_PEERCRED = 17;
export const SO_TYPE = 3;
/** `getrlimit`'s resource for the number of open files; `struct rlimit` is two u64, soft then hard. */
export const RLIMIT_NOFILE = 7;
export const SO_ACCEPTCONN = 30;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** struct msghdr (x86_64): name, namelen, iov, iovlen, control, controllen, flags. */
export const MSGHDR_SIZE = 56;
export const MSGHDR_IOV = 16;
export const MSGHDR_IOVLEN = 24;
export const MSGHDR_CONTROL = 32;
export const MSGHDR_CONTROLLEN = 40;
export const MSGHDR_FLAGS = 48;
/** struct cmsghdr: size_t len, int level, int type, then the data (8-aligned). */
export const CMSG_HEADER = 16;
/** Most fds one message carries. */
export const MAX_PASSED_FDS = 4;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
/** `struct pollfd`: `int fd; short events; short revents;`. */
export const POLLFD_SIZE = 8;
export const POLLFD_REVENTS = 6;
/** `revents` bits that say an fd's other end is gone (or the fd is not open). */
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t (u16) and 108 bytes of path. */
export const SOCKADDR_UN_SIZE = 110;
export const FUTEX_WAIT = 0;
export const FUTEX_WAKE = 1;
/** sizeof(struct stat) and the offsets of the fields we read (x86_64 glibc). */
export const STAT_SIZE = 144;
export const STAT_DEV_OFFSET = 0;
export const STAT_INO_OFFSET = 8;
export const STAT_MODE_OFFSET = 24;
export const STAT_UID_OFFSET = 28;
export const STAT_SIZE_OFFSET = 48;
export const STAT_BLOCKS_OFFSET = 64;
/** `lseek`'s whence for the next offset that holds data (not a hole). */
export const SEEK_DATA = 3;
