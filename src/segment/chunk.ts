/**
 * Reading a live chunk's identity from its header, for the objects that live in chunks (fifos,
 * message queues). Each word is read once, checked, and only the checked values are used, so
 * a peer that changes the header meanwhile cannot make a handle reach past its chunk; the chunk
 * must also end where this process's own chunk index says (`chunkEnd`), not only where its
 * header claims.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  chunkBytes,
  FF_ALLOC_SEQ,
  FF_CHUNK_LENGTH,
  FF_CLASS,
  FF_KIND,
  FF_MAGIC,
  FF_OWNER,
  FF_STATE,
  FIFO_AREA_START,
  FIFO_HEADER_SIZE,
  FIFO_MAGIC,
  FIFO_STATE_LIVE,
  SIZE_CLASSES,
} from "../layout.ts";

/** What a live chunk's header says, as read once and checked. */
export interface LiveChunk {
  /** The allocation number: a handle keeps it and checks it on every use. */
  readonly seq: number;
  readonly sizeClass: number;
}

/**
 * Reads the header of the live chunk of `kind` at `offset`: a RangeError when there is none
 * there (`what` names the kind for the message), SegmentError "corrupt" when its header does not
 * match its place.
 */
export function readLiveChunk(
  mem: { readonly u32: Uint32Array; readonly size: number; readonly name: string },
  offset: number,
  chunkEnd: number,
  kind: number,
  what: string,
): LiveChunk {
  if (
    !Number.isSafeInteger(offset) || offset < FIFO_AREA_START || offset % 64 !== 0 ||
    offset + FIFO_HEADER_SIZE > mem.size
  ) {
    throw new RangeError(`no ${what} can start at offset ${offset} of segment "${mem.name}"`);
  }
  const u32 = mem.u32;
  const w = offset >>> 2;
  const magic = Atomics.load(u32, w + FF_MAGIC / 4);
  const state = Atomics.load(u32, w + FF_STATE / 4);
  const seq = Atomics.load(u32, w + FF_ALLOC_SEQ / 4);
  if (magic !== FIFO_MAGIC || state !== FIFO_STATE_LIVE || seq === 0 || Atomics.load(u32, w + FF_KIND / 4) !== kind) {
    throw new RangeError(`no live ${what} at offset ${offset} of segment "${mem.name}"`);
  }
  const sizeClass = Atomics.load(u32, w + FF_CLASS / 4);
  const length = Atomics.load(u32, w + FF_CHUNK_LENGTH / 4);
  if (
    sizeClass >= SIZE_CLASSES || length !== chunkBytes(sizeClass) || offset + length !== chunkEnd ||
    chunkEnd > mem.size
  ) {
    throw new SegmentError("corrupt", `${what} header at offset ${offset} of segment "${mem.name}" is out of bounds`);
  }
  return { seq, sizeClass };
}

/**
 * A handle's `toString()`: `describe()` while its chunk is live, else `gone`. Another process may
 * free the chunk while it is described; a description that fails because of that says `gone`, as
 * if the handle had been looked at a moment later.
 */
export function describeLive(handle: { readonly isLive: boolean }, describe: () => string, gone: string): string {
  try {
    if (handle.isLive) return describe();
  } catch (error) {
    if (handle.isLive) throw error;
  }
  return gone;
}

/**
 * The process at the other end of one side of a chunk (a fifo, a ring): the tag in `sideWord`
 * (a u32 index), written by the other side when it showed up, or else the chunk's allocator;
 * 0 when that is `ownTag` (or nobody).
 */
export function peerTag(u32: Uint32Array, sideWord: number, chunk: number, ownTag: number): number {
  let tag = Atomics.load(u32, sideWord);
  if (tag === 0) tag = Atomics.load(u32, (chunk + FF_OWNER) >>> 2);
  return tag === ownTag ? 0 : tag;
}
