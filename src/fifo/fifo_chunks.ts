/**
 * The chunk table of a chunked fifo (see "Chunked fifo" in `layout.ts`): where each ring byte
 * lives, copies that follow the chunks, and the two sides' rules for taking chunks from the
 * segment, handing them to each other without a lock (the spare chunks), and giving them back.
 * A table word is read at the moment of use and checked against the segment: a peer that
 * scribbles on the table gets `SegmentError` "corrupt", never an access outside the segment.
 *
 * @module
 */

import { SegmentError } from "../errors.ts";
import {
  CHUNK_CLAIMED,
  CHUNK_FLAGS as FLAGS,
  CHUNK_KEPT,
  CHUNK_TABLE_STRIDE,
  chunkTableWord,
  FF_PRODUCER_HAND,
  FF_SPARE_CHUNKS,
  FIFO_AREA_START,
  FIFO_HEADER_SIZE,
  MAX_SPARE_CHUNKS,
  tableChunk,
} from "../layout.ts";
import type { ByteCopier } from "../byte_copy.ts";

/** Slots behind the head the producer looks at for a kept chunk, past the spare chunks. */
const LOOK_BACK = 4;
/** A kept chunk this few slots past an empty one the producer fills is not moved there (see #moveKept). */
const NEAR = 2;
/**
 * How long a reader that polls finds its fifo empty before it gives back the spare chunks, in
 * ms: longer than the hiccups of a busy writer (a collection, a lost time slice), which would
 * otherwise send its chunks through the allocator and back again. A reader that waits gives
 * them back at once.
 */
export const IDLE_MS = 50;
/** Chunks taken or given back under one hold of the allocator lock, at most. */
const BATCH = 64;
/** log2 of the words from one table word to the next. */
const STRIDE = Math.log2(CHUNK_TABLE_STRIDE / 4);

/** What the table needs of its segment: the words, and chunks from the allocator. */
export interface ChunkSource {
  readonly u32: Uint32Array;
  readonly size: number;
  readonly name: string;
  /**
   * Fills the fifo's table words of `batch` in order: an empty one with a chunk of
   * `sizeClass`, one whose chunk the consumer claimed (and has not given back yet) by taking
   * that chunk back. Returns how many words it filled (fewer when the segment has no more).
   */
  growChunks(fifo: number, seq: number, sizeClass: number, batch: ChunkBatch): number;
  /**
   * Gives back the chunks of the words `words[0..count)` that still hold `values[0..count)`
   * (a chunk's offset, with its flag bits), and clears those words.
   */
  dropChunks(fifo: number, seq: number, words: Uint32Array, values: Uint32Array, count: number): void;
  /** Settles the producer's hand word `hand` of the fifo (its last holder died): see `layout.ts`. */
  settleHand(fifo: number, seq: number, hand: number): void;
}

/** A producer's request to the allocator, made once per handle and refilled for each grow. */
export interface ChunkBatch {
  /** Byte offsets of the table words to fill, in order: the first `count` of them. */
  readonly words: Uint32Array;
  count: number;
}

/** One chunked fifo's table, as one handle sees it. */
export class FifoChunks {
  readonly #src: ChunkSource;
  readonly #u32: Uint32Array;
  readonly #fifo: number;
  readonly #seq: number;
  /** The ring's bytes (the fifo's capacity), chunk bytes, log2 of those, slots. */
  readonly #ring: number;
  readonly #bytes: number;
  readonly #shift: number;
  readonly #slots: number;
  readonly #sizeClass: number;
  /** Index in #u32 of table word 0, and of the producer's hand word. */
  readonly #table: number;
  readonly #hand: number;
  /** Chunks the consumer leaves behind the head while data flows (K, capped). */
  readonly #spare: number;
  /** The words and values of one batch for the allocator (allocated once). */
  readonly #words = new Uint32Array(BATCH);
  readonly #values = new Uint32Array(BATCH);
  /** Slot indices of the words in #words, for a grow that stops short. */
  readonly #slotsOf = new Uint32Array(BATCH);
  readonly #grow: ChunkBatch = { words: this.#words, count: 0 };
  /** Largest offset a chunk may start at and still end inside the segment. */
  readonly #lastStart: number;
  /** The consumer's: whether it may have left spare chunks, and since when it finds the fifo empty (-1: not now). */
  #sparing = true;
  #emptySince = -1;
  #emptyLooks = 0;

  constructor(src: ChunkSource, fifo: number, seq: number, ring: number, chunkBytes: number, sizeClass: number) {
    this.#src = src;
    this.#u32 = src.u32;
    this.#fifo = fifo;
    this.#seq = seq;
    this.#ring = ring;
    this.#bytes = chunkBytes;
    this.#shift = Math.log2(chunkBytes);
    this.#slots = ring / chunkBytes;
    this.#sizeClass = sizeClass;
    this.#table = chunkTableWord(fifo, 0);
    this.#hand = (fifo + FF_PRODUCER_HAND) >>> 2;
    // A peer's word: read once, and never more than the slots behind the head.
    const spare = Atomics.load(src.u32, (fifo + FF_SPARE_CHUNKS) >>> 2);
    this.#spare = Math.min(spare, MAX_SPARE_CHUNKS, this.#slots - 1);
    this.#lastStart = src.size - FIFO_HEADER_SIZE - chunkBytes;
  }

  /** Bytes of each data chunk. */
  get chunkBytes(): number {
    return this.#bytes;
  }

  /** Index in the segment's words of slot `slot`'s table word. */
  #w(slot: number): number {
    return this.#table + (slot << STRIDE);
  }

  /** Chunks the consumer leaves behind the head for the producer while data flows. */
  get spareChunks(): number {
    return this.#spare;
  }

  /** The data chunks the table holds now. */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.#slots; i++) if (Atomics.load(this.#u32, this.#w(i)) !== 0) n++;
    return n;
  }

  /** The chunk a table word names (its flag bits off), checked: outside the segment is corruption. */
  #chunkOf(slot: number, word: number): number {
    const chunk = tableChunk(word);
    if (chunk !== 0 && (chunk < FIFO_AREA_START || chunk > this.#lastStart)) this.#badWord(slot, chunk);
    return chunk;
  }

  /** The chunk of slot `slot`, or 0 when it has none. */
  #chunk(slot: number): number {
    return this.#chunkOf(slot, Atomics.load(this.#u32, this.#w(slot)));
  }

  /** The data of slot `slot`, which must have a chunk (the bytes in it are live). */
  #data(slot: number): number {
    const chunk = this.#chunk(slot);
    if (chunk === 0) this.#missing(slot);
    return chunk + FIFO_HEADER_SIZE;
  }

  #badWord(slot: number, chunk: number): never {
    throw new SegmentError(
      "corrupt",
      `chunked fifo at offset ${this.#fifo} of segment "${this.#src.name}": slot ${slot} names ${chunk}, outside the segment`,
    );
  }

  #missing(slot: number): never {
    throw new SegmentError(
      "corrupt",
      `chunked fifo at offset ${this.#fifo} of segment "${this.#src.name}": slot ${slot} holds live bytes but no chunk`,
    );
  }

  /** Writes n bytes of src (from srcAt) at ring index `at`, chunk by chunk, wrapping at the ring's end. */
  copyIn(copier: ByteCopier, at: number, src: Uint8Array, srcAt: number, n: number): void {
    const mask = this.#bytes - 1;
    while (n > 0) {
      const within = at & mask;
      const k = Math.min(this.#bytes - within, n);
      copier.toSegment(this.#data(at >>> this.#shift) + within, src, srcAt, k);
      srcAt += k;
      n -= k;
      at += k;
      if (at >= this.#ring) at -= this.#ring;
    }
  }

  /** Reads n bytes from ring index `at` into dst (from dstAt). */
  copyOut(copier: ByteCopier, at: number, dst: Uint8Array, dstAt: number, n: number): void {
    const mask = this.#bytes - 1;
    while (n > 0) {
      const within = at & mask;
      const k = Math.min(this.#bytes - within, n);
      copier.fromSegment(dst, dstAt, this.#data(at >>> this.#shift) + within, k);
      dstAt += k;
      n -= k;
      at += k;
      if (at >= this.#ring) at -= this.#ring;
    }
  }

  /** Views over `buffer` (the segment's lent one) of the n ring bytes from `at`, one per chunk. */
  views(buffer: ArrayBuffer | SharedArrayBuffer, at: number, n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const mask = this.#bytes - 1;
    while (n > 0) {
      const within = at & mask;
      const k = Math.min(this.#bytes - within, n);
      out.push(new Uint8Array(buffer, this.#data(at >>> this.#shift) + within, k));
      n -= k;
      at += k;
      if (at >= this.#ring) at -= this.#ring;
    }
    return out;
  }

  /**
   * The producer's check before it writes ring bytes [at, at + n) (n > 0): whether every slot
   * they touch has a chunk it may write into. A chunk the consumer kept there is claimed in place.
   */
  present(at: number, n: number): boolean {
    let slot = at >>> this.#shift;
    const last = (at + n - 1) >>> this.#shift; // may pass the last slot: the range wraps
    for (let i = slot; i <= last; i++) {
      const word = this.#own(slot);
      if (word === 0 || (word & FLAGS) !== 0) return false;
      if (++slot === this.#slots) slot = 0;
    }
    return true;
  }

  /**
   * The producer's look at slot `slot` (in the range it is about to write): a chunk the consumer
   * kept there is claimed in place, unless the consumer claimed it first. Returns the word as it
   * is then: a chunk of the producer's (no flags), 0, or one the consumer is giving back.
   */
  #own(slot: number): number {
    const word = Atomics.load(this.#u32, this.#w(slot));
    if ((word & FLAGS) !== CHUNK_KEPT) return word;
    this.#chunkOf(slot, word);
    const was = Atomics.compareExchange(this.#u32, this.#w(slot), word, word - CHUNK_KEPT);
    return was === word ? word - CHUNK_KEPT : was;
  }

  /**
   * The producer's step before it writes ring bytes [at, at + n): gives every slot they touch a
   * chunk, claiming a kept one in place, or moving one the consumer kept wholly behind the head
   * (ring index `headAt`) and past what the producer uses (`reach` bytes from the head: what is
   * stored, plus out-of-order data and this write), or else taking one from the segment.
   * Returns how many bytes from `at` have chunks now: n, or less when the segment ran out.
   */
  provide(at: number, n: number, headAt: number, reach: number): number {
    const u32 = this.#u32;
    if (Atomics.load(u32, this.#hand) !== 0) this.#src.settleHand(this.#fifo, this.#seq, this.#hand << 2);
    const last = (at + n - 1) >>> this.#shift; // may pass the last slot: the range wraps
    for (let i = at >>> this.#shift; i <= last;) {
      let count = 0;
      for (; i <= last && count < BATCH; i++) {
        const slot = i < this.#slots ? i : i - this.#slots;
        const word = this.#own(slot);
        if (word !== 0 && (word & FLAGS) === 0) continue;
        if (word === 0 && this.#moveKept(slot, headAt, reach, false)) continue;
        this.#words[count] = this.#w(slot) << 2; // empty, or claimed by the consumer
        this.#slotsOf[count++] = i;
      }
      if (count === 0) continue;
      this.#grow.count = count;
      const filled = this.#src.growChunks(this.#fifo, this.#seq, this.#sizeClass, this.#grow);
      for (let j = filled; j < count; j++) {
        // The segment ran out: a chunk the consumer kept can still fill an empty slot.
        const k = this.#slotsOf[j];
        const slot = k < this.#slots ? k : k - this.#slots;
        if (Atomics.load(u32, this.#w(slot)) === 0 && this.#moveKept(slot, headAt, reach, true)) continue;
        const have = k * this.#bytes - at; // bytes before the first slot left empty
        return have > 0 ? have : 0;
      }
    }
    return n;
  }

  /**
   * Fills the empty slot `target` with a chunk the consumer kept wholly behind the head and past
   * what the producer uses (see `provide`), the nearest one, claimed without a lock: the chunk
   * goes into the hand word first, so that a producer killed between the claim and the new word
   * loses nothing. Unless `force` (the segment has no chunk left), not when that chunk is at
   * most NEAR slots past the target and the consumer keeps more spares than that: the slot it
   * leaves empty is one the producer writes next, where it would move again, write after write,
   * while the fifo runs nearly full; a chunk from the segment fills the gap for good instead (the
   * fifo then holds what a full ring needs). With fewer spares the consumer would give such a
   * chunk back at once: moving is how those fifos reuse their chunks.
   */
  #moveKept(target: number, headAt: number, reach: number, force: boolean): boolean {
    const u32 = this.#u32;
    const look = Math.min(this.#slots - 1, this.#spare + LOOK_BACK);
    let slot = headAt >>> this.#shift;
    for (let i = 0; i < look; i++) {
      slot = slot === 0 ? this.#slots - 1 : slot - 1;
      let from = slot * this.#bytes - headAt; // the slot's distance from the head
      if (from < 0) from += this.#ring;
      if (from < reach) return false;
      const word = Atomics.load(u32, this.#w(slot));
      if ((word & FLAGS) !== CHUNK_KEPT) continue;
      if (!force && this.#spare > NEAR && (slot - target + this.#slots) % this.#slots <= NEAR) return false;
      const chunk = this.#chunkOf(slot, word);
      Atomics.store(u32, this.#hand, chunk);
      if (Atomics.compareExchange(u32, this.#w(slot), word, 0) === word) {
        Atomics.store(u32, this.#w(target), chunk);
        Atomics.store(u32, this.#hand, 0);
        return true;
      }
      Atomics.store(u32, this.#hand, 0);
    }
    return false;
  }

  /**
   * The consumer's step after it read ring bytes [at, at + n) and before it publishes the head
   * past them. Of the slots it read to their end, the last K (the spare chunks) keep their
   * chunks for the producer, the others give theirs back; kept chunks the head now leaves more
   * than K slots behind are claimed and given back. With no spares, a read that `drained` the
   * fifo keeps one chunk: the last slot read, when the head stops at its end and the next slot
   * is empty. (A read never ends in the slot it began in: the ring is a chunk larger than what
   * can be stored.)
   */
  passed(at: number, n: number, drained: boolean): void {
    const u32 = this.#u32;
    this.#emptySince = -1;
    const within = at & (this.#bytes - 1);
    const ends = (within + n) >>> this.#shift; // slots read to their end
    if (ends === 0) return;
    const stop = (within + n) & (this.#bytes - 1); // where the head stops in its slot
    let headSlot = (at >>> this.#shift) + ends; // the slot the head stops in
    if (headSlot >= this.#slots) headSlot -= this.#slots;
    let slot = at >>> this.#shift;
    let count = 0;
    let kept = -1; // the slot a drained fifo keeps without spares
    for (let i = 0; i < ends; i++) {
      const next = slot + 1 === this.#slots ? 0 : slot + 1;
      const behind = ends - i; // how far behind the head's slot this one is
      let keep = behind <= this.#spare;
      if (!keep && drained && behind === 1 && stop === 0 && Atomics.load(u32, this.#w(next)) === 0) {
        keep = true;
        kept = slot;
      }
      const word = Atomics.load(u32, this.#w(slot));
      const chunk = this.#chunkOf(slot, word);
      if (chunk !== 0) {
        if (keep) {
          Atomics.store(u32, this.#w(slot), chunk | CHUNK_KEPT);
          this.#sparing = true;
        } else {
          this.#words[count] = this.#w(slot) << 2;
          this.#values[count] = word;
          if (++count === BATCH) count = this.#drop(count);
        }
      }
      slot = next;
    }
    // Chunks kept by earlier reads (at most max(K, 1) slots behind the head before this read)
    // that the head now leaves more than K slots behind.
    const reach = Math.min(this.#slots - 1, Math.max(this.#spare, 1) + ends);
    count = this.#reclaim(headSlot, this.#spare + 1, reach, kept, count);
    if (count > 0) this.#drop(count);
  }

  /**
   * The consumer's step when it is about to wait on the empty fifo (its head at ring index
   * `headAt`): the spare chunks go back, but for one when the head's slot has no chunk (a
   * fifo keeps one chunk).
   */
  rest(headAt: number): void {
    if (!this.#sparing) return;
    const u32 = this.#u32;
    this.#sparing = false;
    this.#emptySince = -1;
    const headSlot = headAt >>> this.#shift;
    const reach = Math.min(this.#slots - 1, Math.max(this.#spare, 1) + LOOK_BACK);
    let kept = -1;
    if (Atomics.load(u32, this.#w(headSlot)) === 0) {
      // The nearest kept chunk behind the head stays.
      let slot = headSlot;
      for (let behind = 1; behind <= reach && kept < 0; behind++) {
        slot = slot === 0 ? this.#slots - 1 : slot - 1;
        if ((Atomics.load(u32, this.#w(slot)) & FLAGS) === CHUNK_KEPT) kept = slot;
      }
    }
    const count = this.#reclaim(headSlot, 1, reach, kept, 0);
    if (count > 0) this.#drop(count);
  }

  /**
   * The consumer's step when a read finds the fifo empty (its head at ring index `headAt`): once
   * it has found it empty for IDLE_MS since it last read data, the spare chunks go back as in
   * `rest`. A reader that polls gives them back as soon as data stops flowing, not between two
   * writes.
   */
  idle(headAt: number): void {
    if (!this.#sparing) return;
    // A polling reader calls this in its loop: the clock (an op in Deno) every 16th look only.
    if (this.#emptySince >= 0 && (++this.#emptyLooks & 15) !== 0) return;
    const now = performance.now();
    if (this.#emptySince < 0) this.#emptySince = now;
    else if (now - this.#emptySince >= IDLE_MS) this.rest(headAt);
  }

  /**
   * Claims the kept chunks (and gives back the claimed ones a dead consumer left) from `first`
   * to `reach` slots behind `headSlot`, but for slot `kept`, into the batch after its first
   * `count` entries; returns the batch's new count.
   */
  #reclaim(headSlot: number, first: number, reach: number, kept: number, count: number): number {
    if (first > reach) return count; // no slot that far behind (the spares cover the ring)
    const u32 = this.#u32;
    let slot = headSlot;
    for (let behind = 1; behind <= reach; behind++) {
      slot = slot === 0 ? this.#slots - 1 : slot - 1;
      if (behind < first || slot === kept) continue;
      const word = Atomics.load(u32, this.#w(slot));
      if ((word & FLAGS) === 0) continue; // empty, being read, or the producer's again
      this.#chunkOf(slot, word);
      let value = word;
      if ((word & CHUNK_KEPT) !== 0) {
        value = word - CHUNK_KEPT + CHUNK_CLAIMED;
        if (Atomics.compareExchange(u32, this.#w(slot), word, value) !== word) continue; // the producer took it
      }
      this.#words[count] = this.#w(slot) << 2;
      this.#values[count] = value;
      if (++count === BATCH) count = this.#drop(count);
    }
    return count;
  }

  /** Gives back the batch of the first `count` words and values; returns 0. */
  #drop(count: number): number {
    this.#src.dropChunks(this.#fifo, this.#seq, this.#words, this.#values, count);
    return 0;
  }
}
