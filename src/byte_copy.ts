/**
 * Copies between a caller's Uint8Array and a segment's memory without allocating. Typed arrays
 * offer no allocation-free copy of part of one array into another (`set` wants a whole source,
 * so a part needs a `subarray` view), and a byte loop is slow. So:
 *
 * - a whole source into the segment: `set`, which allocates nothing;
 * - up to {@link WORD_COPY_MAX} bytes otherwise: 32-bit words through DataViews (unaligned
 *   loads and stores both engines compile to single instructions), the caller's DataView
 *   cached by array, so a caller that reuses its array allocates nothing;
 * - larger parts: `set` with one `subarray` view (a small object, no buffer), whose cost is
 *   noise beside the copy.
 *
 * @module
 */

/** Largest copy done word by word. */
export const WORD_COPY_MAX = 512;

const EMPTY = new DataView(new ArrayBuffer(0));

/** Whether an array's buffer can change length (a resizable ArrayBuffer, a growable SharedArrayBuffer). */
export function resizable(array: Uint8Array): boolean {
  const buffer = array.buffer as { resizable?: boolean; growable?: boolean };
  return buffer.resizable === true || buffer.growable === true;
}

/** One fifo's copier: the segment's views and a cache of the caller's DataView. */
export class ByteCopier {
  readonly #ring: Uint8Array;
  readonly #ringView: DataView;
  readonly #ringWords: Int32Array;
  #dstWordsArray: Uint8Array | null = null;
  #dstWords: Int32Array = new Int32Array(0);
  #srcArray: Uint8Array | null = null;
  #srcView: DataView = EMPTY;
  #dstArray: Uint8Array | null = null;
  #dstView: DataView = EMPTY;

  constructor(ring: Uint8Array, ringView: DataView, ringWords: Int32Array) {
    this.#ring = ring;
    this.#ringView = ringView;
    this.#ringWords = ringWords;
  }

  /**
   * Int32 words over the caller's destination, when it starts on a word boundary and its length
   * is fixed: over a resizable buffer a cached word view would keep its first length while the
   * array grows, and writes past it would be dropped without a word.
   */
  #dstWordsOf(array: Uint8Array): Int32Array | null {
    if (array !== this.#dstWordsArray) {
      if (array.byteOffset % 4 !== 0 || resizable(array)) return null;
      this.#dstWordsArray = array;
      this.#dstWords = new Int32Array(array.buffer, array.byteOffset, array.byteLength >>> 2);
    }
    return this.#dstWords;
  }

  /**
   * DataViews over the caller's source and destination buffers, each cached by array (reading
   * `.buffer` is slow in V8), one slot per direction so that a fifo used both ways keeps both.
   */
  #srcViewOf(array: Uint8Array): DataView {
    if (array !== this.#srcArray) {
      this.#srcArray = array;
      this.#srcView = new DataView(array.buffer);
    }
    return this.#srcView;
  }

  #dstViewOf(array: Uint8Array): DataView {
    if (array !== this.#dstArray) {
      this.#dstArray = array;
      this.#dstView = new DataView(array.buffer);
    }
    return this.#dstView;
  }

  /** Copies `n` bytes of `src` from `srcAt` to segment offset `to`. */
  toSegment(to: number, src: Uint8Array, srcAt: number, n: number): void {
    if (srcAt === 0 && n === src.length) {
      this.#ring.set(src, to);
    } else if (n <= WORD_COPY_MAX) {
      const user = this.#srcViewOf(src);
      const ring = this.#ringView;
      const from = src.byteOffset + srcAt;
      let i = 0;
      for (; i + 4 <= n; i += 4) ring.setInt32(to + i, user.getInt32(from + i, true), true);
      for (; i < n; i++) ring.setUint8(to + i, user.getUint8(from + i));
    } else {
      this.#ring.set(src.subarray(srcAt, srcAt + n), to);
    }
  }

  /** Copies `n` bytes from segment offset `from` into `dst` at `dstAt`. */
  fromSegment(dst: Uint8Array, dstAt: number, from: number, n: number): void {
    if (n <= WORD_COPY_MAX && ((from | dstAt | n) & 3) === 0) {
      const words = this.#dstWordsOf(dst);
      if (words !== null) {
        // Both sides word-aligned: typed-array word copies, the fastest loop both engines have.
        const ring = this.#ringWords;
        const src = from >>> 2;
        const to = dstAt >>> 2;
        for (let i = 0, k = n >>> 2; i < k; i++) words[to + i] = ring[src + i];
        return;
      }
    }
    if (n <= WORD_COPY_MAX) {
      const user = this.#dstViewOf(dst);
      const ring = this.#ringView;
      const to = dst.byteOffset + dstAt;
      let i = 0;
      for (; i + 4 <= n; i += 4) user.setInt32(to + i, ring.getInt32(from + i, true), true);
      for (; i < n; i++) user.setUint8(to + i, ring.getUint8(from + i));
    } else {
      dst.set(this.#ring.subarray(from, from + n), dstAt);
    }
  }
}
