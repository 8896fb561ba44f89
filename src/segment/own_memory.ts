/**
 * The check that a caller's array is not a view of the segment's own memory (copying shared
 * memory into shared memory could scramble both, and another process may be changing it), with
 * what makes it cheap: the fifos, queues and rings remember the last array that passed (a
 * compare on their hot path) and, here, the buffer under it. A fresh view of a buffer that
 * passed (`buf.subarray(off)` for the rest of a partial write) then passes with one compare,
 * where asking the mappings costs an FFI call (microseconds in Deno). A buffer that passed
 * cannot become the segment's: a mapping made later never lies over memory that was already an
 * array's.
 *
 * @module
 */

/** One direction's memory of what passed: the buffer of the last non-empty view. */
export interface PassedBuffer {
  buffer: ArrayBufferLike | null;
}

/**
 * Throws TypeError(`message`) when `view` lies in the segment's memory: its buffer is `own`, or
 * `memory.holds` (which asks this process's mappings of the segment's file) says so. A view of the
 * buffer in `passed` is not asked about again.
 */
export function refuseOwnMemory(
  view: Uint8Array,
  own: ArrayBufferLike,
  memory: { holds(view: Uint8Array): boolean },
  passed: PassedBuffer,
  message: string,
): void {
  const buffer = view.buffer;
  if (buffer === passed.buffer) return;
  if (buffer === own || memory.holds(view)) throw new TypeError(message);
  if (view.byteLength > 0) passed.buffer = buffer; // an empty view's range says nothing of its buffer
}
