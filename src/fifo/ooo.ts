/**
 * Out-of-order ranges of a fifo, kept by the producer in its own memory (never shared: the
 * consumer does not need them). Ranges are stored by absolute position (the fifo's u32 byte
 * counter), so they need no update when the tail moves; offsets relative to the tail are
 * computed on demand. Kept sorted, disjoint and non-touching: an add merges with every range
 * it overlaps or touches.
 *
 * @module
 */

/** A range of bytes written ahead of the tail: `offset` from the current tail, `length` bytes. */
export interface OooSegment {
  /** Bytes past the current tail where the range starts. */
  readonly offset: number;
  /** Bytes in the range. */
  readonly length: number;
}

/** The producer's list of out-of-order ranges. */
export class OooRanges {
  /** The period of the fifo's counters: positions are counted modulo it. */
  readonly #period: number;
  constructor(period: number) {
    this.#period = period;
  }
  /** How far `position` lies past `tail`, modulo the period. */
  #past(position: number, tail: number): number {
    return position >= tail ? position - tail : position + this.#period - tail;
  }
  /** Absolute start positions (modulo the period), sorted by distance from the tail. */
  #starts: number[] = [];
  #lengths: number[] = [];
  /** Index of the range the last add created or grew, or -1 (none, or an in-order enqueue since). */
  #newest = -1;

  /** Number of ranges. */
  get count(): number {
    return this.#starts.length;
  }

  /** Forgets every range. */
  clear(): void {
    this.#starts.length = 0;
    this.#lengths.length = 0;
    this.#newest = -1;
  }

  /** The ranges relative to `tail`, sorted. */
  list(tail: number): OooSegment[] {
    return this.#starts.map((s, i) => ({ offset: this.#past(s, tail), length: this.#lengths[i] }));
  }

  /** The range the last add created or grew, relative to `tail`, or null. */
  newest(tail: number): OooSegment | null {
    const i = this.#newest;
    return i < 0 ? null : { offset: this.#past(this.#starts[i], tail), length: this.#lengths[i] };
  }

  /** How far past `tail` the last range ends (0 when there is none). */
  extent(tail: number): number {
    const last = this.#starts.length - 1;
    return last < 0 ? 0 : this.#past(this.#starts[last], tail) + this.#lengths[last];
  }

  /** Records bytes [offset, offset + length) past `tail`, merging with touching ranges. */
  add(tail: number, offset: number, length: number): void {
    let lo = offset;
    let hi = offset + length;
    const starts = this.#starts;
    const lengths = this.#lengths;
    // First range that ends at or after lo (touching counts).
    let first = 0;
    while (first < starts.length && this.#past(starts[first], tail) + lengths[first] < lo) first++;
    let last = first; // one past the last range that starts at or before hi
    while (last < starts.length && this.#past(starts[last], tail) <= hi) {
      const s = this.#past(starts[last], tail);
      if (s < lo) lo = s;
      if (s + lengths[last] > hi) hi = s + lengths[last];
      last++;
    }
    if (last - first === 1 && this.#past(starts[first], tail) === lo && lengths[first] === hi - lo) {
      this.#newest = -1; // inside one range: nothing was created or grown (as VPP has it)
      return;
    }
    starts.splice(first, last - first, (tail + lo) % this.#period);
    lengths.splice(first, last - first, hi - lo);
    this.#newest = first;
  }

  /**
   * After `written` bytes were enqueued in order at `tail` (the tail before the write): drops
   * the ranges the write covered and returns how far past `written` the first range that the
   * write reached extends, so the tail can jump over it (0 when none).
   */
  collect(tail: number, written: number): number {
    if (written > 0) this.#newest = -1; // an in-order enqueue clears the newest range (as VPP has it)
    const starts = this.#starts;
    const lengths = this.#lengths;
    let n = 0;
    let extra = 0;
    while (n < starts.length) {
      const s = this.#past(starts[n], tail);
      if (s > written) break;
      const end = s + lengths[n];
      if (end > written) extra = end - written;
      n++;
    }
    if (n === 0) return 0;
    starts.splice(0, n);
    lengths.splice(0, n);
    if (this.#newest >= 0) this.#newest = this.#newest < n ? -1 : this.#newest - n;
    return extra;
  }
}
