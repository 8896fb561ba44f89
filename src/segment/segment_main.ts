/**
 * The pool of segments one process (or one part of it) holds. There is no global pool: each
 * SegmentMain is independent, so one process can create a segment in one main and attach to
 * it from another.
 *
 * @module
 */

import type { Mapping, Os } from "../../ffi/os.ts";
import { loadOs } from "../../ffi/load.ts";
import { readdirSync } from "node:fs";
import {
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
} from "../../ffi/symbols.ts";
import { SegmentError } from "../errors.ts";
import { FS_CREATOR_TAG, PAGE_SIZE, SEG_READY } from "../layout.ts";
import { Segment } from "./segment.ts";
import { AtomicsSignaller, FutexSignaller } from "../wake/signaller.ts";
import { creatorAlive, type Liveness, lockCreatorSlot, PRIVATE_LIVENESS, ProcessTable } from "./process_table.ts";
import { CountedWaiters, TaggedWaiters } from "../wake/waiters.ts";
import { AtomicsSleeper } from "../wake/atomics_sleeper.ts";
import { EventSleeper } from "../wake/event_sleeper.ts";
import { type OpenDoorbell, WakeHub } from "../wake/wake_hub.ts";
import { openDoorbell } from "../../ffi/doorbell.ts";
import {
  connect,
  type ConnectionHost,
  type ConnectOptions,
  listen,
  type Listener,
  type ListenOptions,
} from "../connection/listener.ts";
import type { Connection } from "../connection/connection.ts";
import {
  checkName,
  checkSize,
  formatHeader,
  type HeaderFacts,
  readHeader,
  readMagic,
  readReady,
  type SegmentType,
  setReady,
} from "./segment_header.ts";

/** Options of a {@link SegmentMain}. */
export interface SegmentMainOptions {
  /** How long `attach` waits for a creator to finish formatting. Default 20. */
  timeoutSeconds?: number;
  /** The OS binding to use; by default libc is opened through this runtime's FFI on first need. */
  os?: Os;
}

/** Arguments of `create`. */
export interface CreateArgs {
  /** Where the memory comes from. */
  type: SegmentType;
  /** 1 to 255 bytes of UTF-8, no "/" and no NUL. */
  name: string;
  /** Bytes; rounded up to whole pages (at least two). */
  size: number;
}

/** Arguments of `attach`. */
export type AttachArgs =
  | {
    type: "shm";
    name: string;
    /**
     * Attach even when the object belongs to another user or is open to group or others (mode
     * bits 077). Off by default: such a segment can be changed or truncated by others.
     */
    allowForeign?: boolean;
  }
  | { type: "memfd"; pid: number; fd: number }
  | { type: "memfd"; fd: number; pid?: undefined }
  | { type: "private"; buffer: SharedArrayBuffer };

const SEAL_NEEDED = F_SEAL_SHRINK;

/** An attach in progress. */
interface PendingAttach {
  /** An fd of our own (a new open file description: it carries this process's slot lock). */
  fd: number;
  readonly type: "shm" | "memfd";
  readonly label: string;
  /** performance.now() by which the creator must have set `ready`. */
  readonly deadline: number;
  /** When the object was first seen too short and with nobody holding the creator's slot. */
  orphanSince?: number;
  /** The header page, mapped once the object is long enough. */
  header?: Mapping;
}

/** How long a too-short object with no creator may stay so before it counts as abandoned. */
const CREATOR_GRACE_MS = 1000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Which file a segment is: device and inode, compared before unlinking a name. */
interface FileId {
  readonly dev: number;
  readonly ino: number;
}

const fileKey = (file: FileId) => `${file.dev}:${file.ino}`;

function processId(): number {
  const g = globalThis as { Deno?: { pid: number }; process?: { pid: number } };
  return g.Deno?.pid ?? g.process?.pid ?? 0;
}

function monotonicMs(): number {
  return performance.now();
}

/** Holds the segments this part of a process created or attached. */
export class SegmentMain implements Iterable<Segment> {
  /** How long `attach` waits for a creator to set ready. */
  readonly timeoutSeconds: number;
  #os: Os | undefined;
  /** The doorbell and wake-up connections of this pool's mapped segments, made on first need. */
  #hub: WakeHub | undefined;
  readonly #openDoorbell: OpenDoorbell;
  readonly #pool: (Segment | undefined)[] = [];
  /** The file of each mapped segment (by segment), to tell our own memory and our own names. */
  readonly #files = new Map<Segment, FileId>();
  /** The mapped segments of each file ("dev:ino"): the mappings a view could lie in, found at once however many segments the pool holds. */
  readonly #byFile = new Map<string, Set<Segment>>();
  #live = 0;
  /** Listeners and connections, closed at dispose. */
  readonly #held = new Set<{ close(): void }>();
  /** Aborted at dispose, with "deleted" as its reason: what waits in this main ends then. */
  readonly #disposal = new AbortController();

  /** An empty pool. `timeoutSeconds` bounds how long `attach` waits for a creator. */
  constructor(options: SegmentMainOptions = {}) {
    const timeout = options.timeoutSeconds ?? 20;
    if (typeof timeout !== "number" || !(timeout >= 0) || !Number.isFinite(timeout)) {
      throw new RangeError(`timeoutSeconds must be a finite number >= 0, got ${String(timeout)}`);
    }
    this.timeoutSeconds = timeout;
    this.#os = options.os;
    this.#openDoorbell = openDoorbell;
  }

  /** The wake-up machinery of this pool's mapped segments and connections, made on first need. */
  #wakeHub(): WakeHub {
    return this.#hub ??= new WakeHub(this.os, this.#openDoorbell);
  }

  #connectionHost(): ConnectionHost {
    return {
      os: this.os,
      hub: () => this.#wakeHub(),
      createMemfd: (name, size) => this.create({ type: "memfd", name, size }),
      attachMemfd: (fd) => this.attach({ type: "memfd", fd }),
      delete: (segment) => {
        if (!segment.deleted && this.indexOf(segment) >= 0) this.delete(segment);
      },
      hold: (resource) => {
        this.#refuseDisposed();
        this.#held.add(resource);
        return () => this.#held.delete(resource);
      },
      disposed: this.#disposal.signal,
    };
  }

  /**
   * Listens for connections at `name`: a Linux abstract-namespace Unix socket when the name has
   * no "/" (nothing in the file system; gone with the process), else a socket file at that path
   * (a stale one a dead listener left is replaced; a live one is never taken: "in-use").
   * `for await (const conn of listener)` yields a {@link Connection} per client; only processes
   * of this uid (or of `allowUids`) are let in.
   */
  listen(name: string, options?: ListenOptions): Promise<Listener> {
    if (this.#disposal.signal.aborted) return Promise.reject(this.#disposal.signal.reason);
    return listen(this.#connectionHost(), name, options);
  }

  /**
   * Connects to the listener at `name`, waiting (asleep, up to `timeoutMs`, default 10 s) for it
   * to appear, so that either process may start first. The connection's segment joins this pool.
   */
  connect(name: string, options?: ConnectOptions): Promise<Connection> {
    if (this.#disposal.signal.aborted) return Promise.reject(this.#disposal.signal.reason);
    return connect(this.#connectionHost(), name, options);
  }

  /** Throws `SegmentError` "deleted" once this main was disposed. */
  #refuseDisposed(): void {
    this.#disposal.signal.throwIfAborted();
  }

  /** The OS binding, opened on first need (private segments never need it). */
  get os(): Os {
    this.#os ??= loadOs();
    return this.#os;
  }

  /** Creates a segment and adds it to the pool. */
  create(args: CreateArgs): Segment {
    this.#refuseDisposed();
    if (typeof args !== "object" || args === null) throw new TypeError("create takes { type, name, size }");
    const { type } = args;
    const nameBytes = checkName(args.name);
    const size = checkSize(args.size);
    if (type === "private") {
      const buffer = new SharedArrayBuffer(size);
      formatHeader(buffer, type, nameBytes, size, processId());
      Atomics.store(new Uint32Array(buffer, 0, PAGE_SIZE / 4), FS_CREATOR_TAG >>> 2, PRIVATE_LIVENESS.ownTag);
      setReady(buffer);
      return this.#add({ type, name: args.name, size, creatorPid: processId(), createdHere: true, buffer });
    }
    if (type === "shm" || type === "memfd") return this.#createMapped(type, args.name, nameBytes, size);
    throw new RangeError(`segment type must be "shm", "memfd" or "private", got ${String(type)}`);
  }

  /** Creates an shm or memfd segment; on any failure closes, unmaps and unlinks what it made. */
  #createMapped(type: "shm" | "memfd", name: string, nameBytes: Uint8Array, size: number): Segment {
    const os = this.os;
    const path = `/${name}`;
    const fd = type === "shm"
      ? os.shmOpen(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
      : os.memfdCreate(name, MFD_ALLOW_SEALING | MFD_CLOEXEC);
    let mapping: Mapping | undefined;
    try {
      // The creator's slot, before anything else: an attacher that finds the object unready
      // and this lock free knows the creator died.
      lockCreatorSlot(os, fd);
      os.ftruncate(fd, size);
      // Every page reserved now: a full tmpfs fails here (ENOSPC), never later with SIGBUS.
      os.fallocate(fd, size);
      // Sealed before anyone can attach: nobody can shrink it under a peer's mapping.
      if (type === "memfd") os.addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      mapping = os.mmap(fd, size);
      const pid = os.getpid();
      formatHeader(mapping.buffer, type, nameBytes, size, pid);
      const stat = os.fstat(fd);
      const segment = this.#add(
        { type, name, size, creatorPid: pid, createdHere: true, buffer: mapping.buffer, mapping, fd },
        { creator: true, file: { dev: stat.dev, ino: stat.ino } },
      );
      Atomics.store(segment.u32, FS_CREATOR_TAG >>> 2, segment.liveness.ownTag);
      setReady(mapping.buffer);
      os.futexWake(mapping, SEG_READY, 0x7fffffff); // attachers asleep on `ready`
      return segment;
    } catch (error) {
      if (mapping) os.munmap(mapping);
      os.close(fd);
      if (type === "shm") os.shmUnlink(path);
      throw error;
    }
  }

  /**
   * Attaches to a segment another SegmentMain (of this or another process) created: waits up to
   * `timeoutSeconds` for it to be ready (asleep, blocking this thread), checks its header, and
   * maps all of it. {@link attachAsync} does the same without blocking the event loop.
   */
  attach(args: AttachArgs): Segment {
    this.#refuseDisposed();
    if (args?.type === "private") return this.#attachPrivate(args);
    const pending = this.#open(args);
    try {
      for (;;) {
        const look = this.#look(pending);
        if (look.ready) return this.#finish(pending, look.objectSize);
        if (pending.header) this.os.futexWait(pending.header, SEG_READY, 0, look.sleepMs);
        else this.os.sleepMicroseconds(look.sleepMs * 1000);
      }
    } finally {
      this.#abandon(pending);
    }
  }

  /** {@link attach} that sleeps without blocking the event loop while the creator finishes. */
  async attachAsync(args: AttachArgs): Promise<Segment> {
    this.#refuseDisposed();
    if (args?.type === "private") return this.#attachPrivate(args);
    const pending = this.#open(args);
    try {
      for (;;) {
        const look = this.#look(pending);
        if (look.ready) return this.#finish(pending, look.objectSize);
        // The creator formats in microseconds to milliseconds: poll the ready word every millisecond.
        await new Promise((resolve) => setTimeout(resolve, Math.min(look.sleepMs, 1)));
        this.#refuseDisposed(); // disposed meanwhile: nothing of it is mapped yet
      }
    } finally {
      this.#abandon(pending);
    }
  }

  /**
   * Opens what `args` names as a new open file description of our own (a caller's memfd fd is
   * reopened through /proc/self/fd, so that our slot lock does not ride on the caller's fd),
   * and checks that it is a regular file we may trust. Never blocks (O_NONBLOCK: a FIFO).
   */
  #open(args: AttachArgs): PendingAttach {
    if (typeof args !== "object" || args === null) throw new TypeError("attach takes { type, ... }");
    const deadline = monotonicMs() + this.timeoutSeconds * 1000;
    const flags = O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;
    let pending: PendingAttach;
    if (args.type === "shm") {
      checkName(args.name);
      const fd = this.os.shmOpen(`/${args.name}`, flags, 0);
      pending = { fd, type: "shm", label: `shm segment "${args.name}"`, deadline };
    } else if (args.type === "memfd") {
      checkFd(args.fd);
      if (args.pid !== undefined && (!Number.isSafeInteger(args.pid) || args.pid <= 0)) {
        throw new RangeError(`pid must be a positive integer, got ${args.pid}`);
      }
      const path = args.pid === undefined ? `/proc/self/fd/${args.fd}` : `/proc/${args.pid}/fd/${args.fd}`;
      const fd = this.os.open(path, flags & ~O_NOFOLLOW); // /proc/.../fd/N is a link by nature
      pending = {
        fd,
        type: "memfd",
        label: args.pid === undefined ? `memfd fd ${args.fd}` : `memfd ${path}`,
        deadline,
      };
    } else {
      throw new RangeError(
        `segment type must be "shm", "memfd" or "private", got ${String((args as { type: unknown }).type)}`,
      );
    }
    try {
      const stat = this.os.fstat(pending.fd);
      if ((stat.mode & S_IFMT) !== S_IFREG) {
        throw new SegmentError(
          "not-a-file",
          `${pending.label} is not a regular file (mode 0o${stat.mode.toString(8)})`,
        );
      }
      if (args.type === "shm" && !args.allowForeign) {
        const me = this.os.geteuid();
        if (stat.uid !== me || (stat.mode & 0o077) !== 0) {
          throw new SegmentError(
            "untrusted",
            `${pending.label} belongs to uid ${stat.uid} with mode 0o${(stat.mode & 0o777).toString(8)}; ` +
              `only segments of uid ${me} closed to group and others are attached (allowForeign: true overrides)`,
          );
        }
      }
    } catch (error) {
      this.os.close(pending.fd);
      throw error;
    }
    return pending;
  }

  #attachPrivate(args: { type: "private"; buffer: SharedArrayBuffer }): Segment {
    if (!(args.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("a private segment is attached by its SharedArrayBuffer");
    }
    const label = "private segment";
    if (args.buffer.byteLength < PAGE_SIZE) throw new SegmentError("bad-header", `${label} is smaller than its header`);
    if (readReady(args.buffer) !== 1) throw new SegmentError("timeout", `${label} is not ready`);
    const facts = checkType(readHeader(args.buffer, label, args.buffer.byteLength), "private", label);
    return this.#add({ ...facts, createdHere: false, buffer: args.buffer });
  }

  /**
   * One look at a segment being attached: ready (with the object's size) once it is at least a
   * page long and its `ready` word is set; otherwise how long to sleep before the next look (on
   * the `ready` word once the header page is mapped, so the creator's wake ends the sleep).
   * A foreign magic fails at once; the deadline fails with "timeout".
   */
  #look(p: PendingAttach): { ready: true; objectSize: number } | { ready: false; sleepMs: number } {
    const { size } = this.os.fstat(p.fd);
    if (size >= PAGE_SIZE) {
      // A header page that is a hole is not read through a mapping (on a full tmpfs that is a
      // SIGBUS): it is not ready, and no creator reserving it means "abandoned" below.
      if (p.header === undefined && !this.os.isHole(p.fd, 0)) p.header = this.os.mmap(p.fd, PAGE_SIZE);
      if (p.header !== undefined) {
        if (readReady(p.header.buffer) === 1) return { ready: true, objectSize: size };
        if (readMagic(p.header.buffer) !== 0) readHeader(p.header.buffer, p.label, size);
      }
    }
    // The creator locks its slot before it sizes the object: a sized, unready object whose slot
    // nobody holds will never become ready. A too-short one gets a grace period, for a creator
    // between its shm_open and its lock.
    if (!creatorAlive(this.os, p.fd)) {
      const now = monotonicMs();
      p.orphanSince ??= now;
      if (size >= PAGE_SIZE || now - p.orphanSince >= CREATOR_GRACE_MS) {
        throw new SegmentError(
          "abandoned",
          `${p.label} is not ready and nobody is making it (its creator died, or it is not a segment of this library)`,
        );
      }
    } else {
      p.orphanSince = undefined;
    }
    const left = p.deadline - monotonicMs();
    if (left <= 0) {
      throw new SegmentError(
        "timeout",
        `${p.label} was not ready within ${this.timeoutSeconds} s (its creator never finished)`,
      );
    }
    return { ready: false, sleepMs: Math.min(left, p.header ? 50 : 5) };
  }

  /** Checks the ready header and maps the whole segment into the pool. */
  #finish(p: PendingAttach, objectSize: number): Segment {
    const os = this.os;
    const facts = checkType(readHeader(p.header!.buffer, p.label, objectSize), p.type, p.label);
    if (p.type === "memfd" && (os.getSeals(p.fd) & SEAL_NEEDED) === 0) {
      throw new SegmentError(
        "not-sealed",
        `${p.label} can still shrink (no F_SEAL_SHRINK), so mapping it could crash this process`,
      );
    }
    // Every page reserved before one is touched, as `create` does: an object made otherwise (a
    // sparse copy, a peer's) may have holes, and a hole on a full tmpfs is a SIGBUS.
    if (os.fstat(p.fd).blocks * 512 < facts.size) os.fallocate(p.fd, facts.size);
    const mapping = os.mmap(p.fd, facts.size);
    const fd = p.fd;
    try {
      const stat = os.fstat(fd);
      const segment = this.#add(
        { ...facts, createdHere: false, buffer: mapping.buffer, mapping, fd },
        { creator: false, file: { dev: stat.dev, ino: stat.ino } },
      );
      p.fd = -1; // the segment holds it now
      try {
        segment.repair(); // finish what a process that died inside the allocator left
      } catch (error) {
        this.delete(segment);
        throw error;
      }
      return segment;
    } catch (error) {
      if (p.fd >= 0) os.munmap(mapping);
      throw error;
    }
  }

  /** Releases what an attach held while waiting: the header mapping and its fd, unless a segment took it. */
  #abandon(p: PendingAttach): void {
    if (p.header) this.os.munmap(p.header);
    if (p.fd >= 0) this.os.close(p.fd);
  }

  #add(
    init: Omit<
      ConstructorParameters<typeof Segment>[0],
      "release" | "signaller" | "liveness" | "waiters" | "lend" | "holds" | "makeSleeper"
    >,
    mapped?: { creator: boolean; file: FileId },
  ): Segment {
    const os = mapped ? this.os : undefined;
    const u32 = new Uint32Array(init.buffer, 0, PAGE_SIZE / 4);
    const liveness: Liveness = mapped
      ? new ProcessTable(os!, init.fd!, u32, os!.getpid(), mapped.creator)
      : PRIVATE_LIVENESS;
    const segment = new Segment({
      ...init,
      signaller: init.mapping
        ? new FutexSignaller(os!, init.mapping)
        : new AtomicsSignaller(init.buffer as SharedArrayBuffer),
      liveness,
      waiters: mapped
        ? new TaggedWaiters(new Uint32Array(init.buffer, 0, init.size / 4), liveness)
        : new CountedWaiters(new Uint32Array(init.buffer, 0, init.size / 4)),
      makeSleeper: mapped
        ? (s) => new EventSleeper(s, this.#wakeHub())
        : (s) => new AtomicsSleeper(s, s.signaller as AtomicsSignaller),
      lend: init.mapping ? () => os!.lend(init.mapping!) : () => init.buffer,
      holds: (s, view) => this.#holds(s, view),
      release: (s) => this.delete(s),
    });
    if (mapped) {
      this.#files.set(segment, mapped.file);
      const key = fileKey(mapped.file);
      const same = this.#byFile.get(key);
      if (same) same.add(segment);
      else this.#byFile.set(key, new Set([segment]));
    }
    let index = this.#pool.indexOf(undefined);
    if (index < 0) index = this.#pool.length;
    this.#pool[index] = segment;
    segment.setIndex(index);
    this.#live++;
    return segment;
  }

  /** Whether `view` lies in the memory of `segment`'s file, through any mapping of it in this pool. */
  #holds(segment: Segment, view: Uint8Array): boolean {
    const file = this.#files.get(segment);
    if (file === undefined) return false; // private: the caller compared buffers already
    for (const other of this.#byFile.get(fileKey(file)) ?? []) {
      if (other.mapping && this.os.holds(other.mapping, view)) return true;
    }
    return false;
  }

  /**
   * Removes a segment from the pool and unmaps it; its ArrayBuffer is detached first, so a stale
   * view throws. The creator of an shm segment also unlinks its name; the creator of a memfd
   * closes its fd. Attachers only unmap.
   */
  delete(segment: Segment): void {
    if (!(segment instanceof Segment)) throw new TypeError("delete takes a Segment");
    if (segment.deleted) throw new SegmentError("deleted", `segment "${segment.name}" was already deleted`);
    if (this.#pool[segment.index] !== segment) {
      throw new SegmentError("not-in-main", `segment "${segment.name}" does not belong to this SegmentMain`);
    }
    this.#pool[segment.index] = undefined;
    this.#live--;
    const file = this.#files.get(segment);
    this.#files.delete(segment);
    const same = file && this.#byFile.get(fileKey(file));
    if (same && same.delete(segment) && same.size === 0) this.#byFile.delete(fileKey(file!));
    segment.markDeleted();
    const errors: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (error) {
        errors.push(error);
      }
    };
    if (segment.mapping) attempt(() => this.os.munmap(segment.mapping!));
    if (segment.createdHere && segment.type === "shm" && file) attempt(() => this.#unlinkOwn(segment.name, file));
    if (segment.fd !== undefined) attempt(() => this.os.close(segment.fd!));
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Unlinks the name only while it still names the file this process created: after someone
   * else removed it, the name may belong to another program's object now.
   */
  #unlinkOwn(name: string, file: FileId): void {
    const os = this.os;
    let fd: number;
    try {
      fd = os.shmOpen(`/${name}`, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW, 0);
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return; // someone else removed the name
      throw error;
    }
    let same: boolean;
    try {
      const stat = os.fstat(fd);
      same = stat.dev === file.dev && stat.ino === file.ino;
    } finally {
      os.close(fd);
    }
    if (!same) return;
    try {
      os.shmUnlink(`/${name}`);
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") throw error;
    }
  }

  /**
   * Removes the names of this library's shm segments whose creator is dead, left behind by
   * processes that crashed: ready segments whose creator's lock is gone, and segments their
   * creator never finished. Processes that still have such a segment mapped keep using it; only
   * the name goes. Only names that start with `prefix` are looked at (default: all of
   * /dev/shm); files that are not this library's segments, or not yours, are left alone.
   * Returns the names removed.
   */
  removeStale(options: { prefix?: string } = {}): string[] {
    const prefix = options.prefix ?? "";
    if (typeof prefix !== "string") throw new TypeError("prefix must be a string");
    let names: string[];
    try {
      names = readdirSync("/dev/shm");
    } catch {
      return []; // no /dev/shm: nothing of ours can be there
    }
    const probe = new SegmentMain({ timeoutSeconds: 0, os: this.os });
    const removed: string[] = [];
    for (const name of names.sort()) {
      if (!name.startsWith(prefix)) continue;
      let stale: boolean;
      try {
        const segment = probe.attach({ type: "shm", name });
        stale = !segment.creatorAlive;
        probe.delete(segment);
      } catch (error) {
        // Not ours, not ready yet (its creator lives: "timeout"), or not readable: leave it.
        stale = error instanceof SegmentError && error.code === "abandoned";
      }
      if (!stale) continue;
      try {
        this.os.shmUnlink(`/${name}`);
        removed.push(name);
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOENT") throw error;
      }
    }
    return removed;
  }

  /** The segment at `index` of the pool, or undefined. */
  get(index: number): Segment | undefined {
    return Number.isInteger(index) && index >= 0 ? this.#pool[index] : undefined;
  }

  /** The segment's index in this pool, or -1 when it is not in it. */
  indexOf(segment: Segment): number {
    return segment instanceof Segment && this.#pool[segment.index] === segment ? segment.index : -1;
  }

  /** Number of segments in the pool. */
  get size(): number {
    return this.#live;
  }

  /** The segments in the pool, by index. */
  *[Symbol.iterator](): Iterator<Segment> {
    for (const segment of this.#pool) if (segment) yield segment;
  }

  /**
   * Closes this main's listeners and connections (their peers read the end), deletes every
   * segment in the pool, and closes its doorbell and wake-up connections. A `connect` or
   * `attachAsync` under way rejects with `SegmentError` "deleted", and so does every later
   * `create`, `attach`, `attachAsync`, `listen` and `connect`.
   */
  [Symbol.dispose](): void {
    if (!this.#disposal.signal.aborted) {
      this.#disposal.abort(new SegmentError("deleted", "the SegmentMain was disposed"));
    }
    const errors: unknown[] = [];
    for (const resource of [...this.#held]) {
      try {
        resource.close();
      } catch (error) {
        errors.push(error);
      }
    }
    this.#held.clear();
    for (const segment of [...this]) {
      try {
        this.delete(segment);
      } catch (error) {
        errors.push(error);
      }
    }
    this.#hub?.close();
    if (errors.length > 0) throw errors[0];
  }

  /** One line per segment. */
  toString(): string {
    return [...this].map((s) => s.toString()).join("\n");
  }
}

function checkFd(fd: unknown): void {
  if (typeof fd !== "number" || !Number.isSafeInteger(fd) || fd < 0) {
    throw new RangeError(`fd must be a non-negative integer, got ${String(fd)}`);
  }
}

function checkType(facts: HeaderFacts, expected: SegmentType, label: string): HeaderFacts {
  if (facts.type !== expected) {
    throw new SegmentError("type-mismatch", `${label} was created as a ${facts.type} segment, attached as ${expected}`);
  }
  return facts;
}
