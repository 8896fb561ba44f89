/**
 * The pool of segments one process (or one part of it) holds. There is no global pool: each
 * SegmentMain is independent, so one process can create a segment in one main and attach to
 * it from another.
 *
 * @module
 */

import type { Mapping, Os } from "../ffi/os.ts";
import { loadOs } from "../ffi/load.ts";
import {
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDWR,
} from "../ffi/symbols.ts";
import { SegmentError } from "./errors.ts";
import { PAGE_SIZE, SEG_READY } from "./layout.ts";
import { Segment } from "./segment.ts";
import { AtomicsSignaller, FutexSignaller } from "./signaller.ts";
import {
  checkName,
  checkSize,
  formatHeader,
  type HeaderFacts,
  readHeader,
  readMagic,
  readReady,
  type SegmentType,
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
  | { type: "shm"; name: string }
  | { type: "memfd"; pid: number; fd: number }
  | { type: "memfd"; fd: number; pid?: undefined }
  | { type: "private"; buffer: SharedArrayBuffer };

const SEAL_NEEDED = F_SEAL_SHRINK;

/** An attach in progress. */
interface PendingAttach {
  readonly fd: number;
  /** True when the attach opened the fd itself (and so closes it). */
  readonly ownFd: boolean;
  readonly type: "shm" | "memfd";
  readonly label: string;
  /** performance.now() by which the creator must have set `ready`. */
  readonly deadline: number;
  /** The header page, mapped once the object is long enough. */
  header?: Mapping;
}

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
  readonly #ownsOs: boolean;
  readonly #pool: (Segment | undefined)[] = [];
  #live = 0;

  /** An empty pool. `timeoutSeconds` bounds how long `attach` waits for a creator. */
  constructor(options: SegmentMainOptions = {}) {
    const timeout = options.timeoutSeconds ?? 20;
    if (typeof timeout !== "number" || !(timeout >= 0) || !Number.isFinite(timeout)) {
      throw new RangeError(`timeoutSeconds must be a finite number >= 0, got ${String(timeout)}`);
    }
    this.timeoutSeconds = timeout;
    this.#os = options.os;
    this.#ownsOs = options.os === undefined;
  }

  /** The OS binding, opened on first need (private segments never need it). */
  get os(): Os {
    this.#os ??= loadOs();
    return this.#os;
  }

  /** Creates a segment and adds it to the pool. */
  create(args: CreateArgs): Segment {
    if (typeof args !== "object" || args === null) throw new TypeError("create takes { type, name, size }");
    const { type } = args;
    const nameBytes = checkName(args.name);
    const size = checkSize(args.size);
    if (type === "private") {
      const buffer = new SharedArrayBuffer(size);
      formatHeader(buffer, type, nameBytes, size, processId());
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
    let fdOpen = true;
    let mapping: Mapping | undefined;
    try {
      os.ftruncate(fd, size);
      // Sealed before anyone can attach: nobody can shrink it under a peer's mapping.
      if (type === "memfd") os.addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      mapping = os.mmap(fd, size);
      const pid = os.getpid();
      formatHeader(mapping.buffer, type, nameBytes, size, pid);
      os.futexWake(mapping, SEG_READY, 0x7fffffff); // attachers asleep on `ready`
      if (type === "shm") {
        os.close(fd); // the name keeps the object; a memfd's fd is how others reach it
        fdOpen = false;
      }
      const buffer = mapping.buffer;
      return this.#add({
        type,
        name,
        size,
        creatorPid: pid,
        createdHere: true,
        buffer,
        mapping,
        ...(fdOpen ? { fd } : {}),
      });
    } catch (error) {
      if (mapping) os.munmap(mapping);
      if (fdOpen) os.close(fd);
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
    if (args?.type === "private") return this.#attachPrivate(args);
    const pending = this.#open(args);
    try {
      for (;;) {
        const look = this.#look(pending);
        if (look.ready) return this.#finish(pending, look.objectSize);
        if (pending.header) await this.os.futexWaitAsync(pending.header, SEG_READY, 0, look.sleepMs);
        else await new Promise((resolve) => setTimeout(resolve, look.sleepMs));
      }
    } finally {
      this.#abandon(pending);
    }
  }

  /** Opens what `args` names: a new fd for shm and /proc/PID/fd/N, the caller's fd otherwise. */
  #open(args: AttachArgs): PendingAttach {
    if (typeof args !== "object" || args === null) throw new TypeError("attach takes { type, ... }");
    const deadline = monotonicMs() + this.timeoutSeconds * 1000;
    if (args.type === "shm") {
      checkName(args.name);
      const fd = this.os.shmOpen(`/${args.name}`, O_RDWR | O_CLOEXEC, 0);
      return { fd, ownFd: true, type: "shm", label: `shm segment "${args.name}"`, deadline };
    }
    if (args.type === "memfd") {
      checkFd(args.fd);
      if (args.pid === undefined) {
        return { fd: args.fd, ownFd: false, type: "memfd", label: `memfd fd ${args.fd}`, deadline };
      }
      if (!Number.isSafeInteger(args.pid) || args.pid <= 0) {
        throw new RangeError(`pid must be a positive integer, got ${args.pid}`);
      }
      const path = `/proc/${args.pid}/fd/${args.fd}`;
      const fd = this.os.open(path, O_RDWR | O_CLOEXEC);
      return { fd, ownFd: true, type: "memfd", label: `memfd ${path}`, deadline };
    }
    throw new RangeError(
      `segment type must be "shm", "memfd" or "private", got ${String((args as { type: unknown }).type)}`,
    );
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
      p.header ??= this.os.mmap(p.fd, PAGE_SIZE);
      if (readReady(p.header.buffer) === 1) return { ready: true, objectSize: size };
      if (readMagic(p.header.buffer) !== 0) readHeader(p.header.buffer, p.label, size);
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
    const mapping = os.mmap(p.fd, facts.size);
    return this.#add({ ...facts, createdHere: false, buffer: mapping.buffer, mapping });
  }

  /** Releases what an attach held while waiting: the header mapping and its own fd. */
  #abandon(p: PendingAttach): void {
    if (p.header) this.os.munmap(p.header);
    if (p.ownFd) this.os.close(p.fd);
  }

  #add(init: Omit<ConstructorParameters<typeof Segment>[0], "release" | "signaller">): Segment {
    const signaller = init.mapping
      ? new FutexSignaller(this.os, init.mapping)
      : new AtomicsSignaller(init.buffer as SharedArrayBuffer);
    const segment = new Segment({ ...init, signaller, release: (s) => this.delete(s) });
    let index = this.#pool.indexOf(undefined);
    if (index < 0) index = this.#pool.length;
    this.#pool[index] = segment;
    segment.setIndex(index);
    this.#live++;
    return segment;
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
    if (segment.createdHere && segment.type === "shm") {
      attempt(() => {
        try {
          this.os.shmUnlink(`/${segment.name}`);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOENT") throw error; // someone else removed the name
        }
      });
    }
    if (segment.fd !== undefined) attempt(() => this.os.close(segment.fd!));
    if (errors.length > 0) throw errors[0];
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

  /** Deletes every segment in the pool, and ends the helper threads this main started. */
  [Symbol.dispose](): void {
    const errors: unknown[] = [];
    if (this.#ownsOs) this.#os?.release();
    for (const segment of [...this]) {
      try {
        this.delete(segment);
      } catch (error) {
        errors.push(error);
      }
    }
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
