/**
 * Writing and checking the segment header (page 0; offsets in `layout.ts`).
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  FIFO_AREA_START,
  FS_BUMP,
  LAYOUT_VERSION,
  MAX_NAME_BYTES,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  PAGE_SIZE,
  SEG_CREATOR_PID,
  SEG_MAGIC,
  SEG_NAME,
  SEG_NAME_LENGTH,
  SEG_READY,
  SEG_SIZE,
  SEG_TYPE,
  SEG_VERSION,
  SEGMENT_MAGIC,
  SEGMENT_TYPE_CODES,
} from "../layout.ts";

/** Where a segment's memory comes from. */
export type SegmentType = "shm" | "memfd" | "private";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Checks a segment name: 1 to 255 UTF-8 bytes, no "/" and no NUL, not "." or "..". Returns its bytes. */
export function checkName(name: unknown): Uint8Array {
  if (typeof name !== "string") throw new TypeError(`segment name must be a string, got ${typeof name}`);
  if (name.length === 0) throw new RangeError("segment name must not be empty");
  if (name.includes("/")) throw new RangeError(`segment name must not contain "/": ${JSON.stringify(name)}`);
  if (name.includes("\0")) throw new RangeError(`segment name must not contain NUL: ${JSON.stringify(name)}`);
  if (name === "." || name === "..") {
    throw new RangeError(`segment name must not be "." or "..": they name directories`);
  }
  const bytes = encoder.encode(name);
  if (bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(`segment name is ${bytes.length} bytes of UTF-8; at most ${MAX_NAME_BYTES}`);
  }
  return bytes;
}

/** Checks a requested size and rounds it up to whole pages. */
export function checkSize(size: unknown): number {
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(`segment size must be a positive integer, got ${String(size)}`);
  }
  const rounded = Math.max(MIN_SEGMENT_SIZE, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
  if (rounded > MAX_SEGMENT_SIZE) throw new RangeError(`segment size ${size} exceeds the maximum ${MAX_SEGMENT_SIZE}`);
  return rounded;
}

/** Formats a fresh (zeroed) header; `setReady` follows once the creator holds its process slot. */
export function formatHeader(
  buffer: ArrayBuffer | SharedArrayBuffer,
  type: SegmentType,
  nameBytes: Uint8Array,
  size: number,
  pid: number,
): void {
  const view = new DataView(buffer);
  const u32 = new Uint32Array(buffer, 0, PAGE_SIZE / 4);
  view.setUint32(SEG_VERSION, LAYOUT_VERSION, true);
  view.setBigUint64(SEG_SIZE, BigInt(size), true);
  view.setUint32(SEG_CREATOR_PID, pid, true);
  view.setUint32(SEG_TYPE, SEGMENT_TYPE_CODES[type], true);
  view.setUint32(SEG_NAME_LENGTH, nameBytes.length, true);
  new Uint8Array(buffer, SEG_NAME, nameBytes.length).set(nameBytes);
  Atomics.store(u32, FS_BUMP >>> 2, FIFO_AREA_START);
  Atomics.store(u32, SEG_MAGIC >>> 2, SEGMENT_MAGIC);
}

/** Sets `ready` with a release store: the last step of making a segment. */
export function setReady(buffer: ArrayBuffer | SharedArrayBuffer): void {
  Atomics.store(new Int32Array(buffer, 0, PAGE_SIZE / 4), SEG_READY >>> 2, 1);
}

/** What a valid header says. */
export interface HeaderFacts {
  readonly type: SegmentType;
  readonly size: number;
  readonly creatorPid: number;
  readonly name: string;
}

/** The magic word, read atomically (0 while a creator has not formatted yet). */
export function readMagic(buffer: ArrayBuffer | SharedArrayBuffer): number {
  return Atomics.load(new Uint32Array(buffer, 0, 1), SEG_MAGIC >>> 2);
}

/** The ready word, read atomically. */
export function readReady(buffer: ArrayBuffer | SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(buffer, 0, PAGE_SIZE / 4), SEG_READY >>> 2);
}

/**
 * Reads and checks a ready header: magic, version, type, a size that is whole pages within
 * limits and not beyond `objectSize` (the real size of the file), and the name.
 */
export function readHeader(buffer: ArrayBuffer | SharedArrayBuffer, label: string, objectSize: number): HeaderFacts {
  const view = new DataView(buffer, 0, PAGE_SIZE);
  const magic = view.getUint32(SEG_MAGIC, true);
  if (magic !== SEGMENT_MAGIC) {
    throw new SegmentError("bad-magic", `${label} is not a segment of this library (magic 0x${magic.toString(16)})`);
  }
  const version = view.getUint32(SEG_VERSION, true);
  if (version !== LAYOUT_VERSION) {
    throw new SegmentError(
      "bad-version",
      `${label} has layout version ${version}; this library reads ${LAYOUT_VERSION}`,
    );
  }
  const size = Number(view.getBigUint64(SEG_SIZE, true));
  if (size < MIN_SEGMENT_SIZE || size > MAX_SEGMENT_SIZE || size % PAGE_SIZE !== 0) {
    throw new SegmentError("bad-header", `${label} claims an impossible size ${size}`);
  }
  if (size > objectSize) {
    throw new SegmentError("bad-header", `${label} claims ${size} bytes but holds only ${objectSize}`);
  }
  const code = view.getUint32(SEG_TYPE, true);
  const type = (Object.keys(SEGMENT_TYPE_CODES) as SegmentType[]).find((t) => SEGMENT_TYPE_CODES[t] === code);
  if (type === undefined) throw new SegmentError("bad-header", `${label} has an unknown type code ${code}`);
  const nameLength = view.getUint32(SEG_NAME_LENGTH, true);
  if (nameLength > MAX_NAME_BYTES) throw new SegmentError("bad-header", `${label} has a name of ${nameLength} bytes`);
  const name = decoder.decode(new Uint8Array(buffer, SEG_NAME, nameLength));
  return { type, size, creatorPid: view.getUint32(SEG_CREATOR_PID, true), name };
}
