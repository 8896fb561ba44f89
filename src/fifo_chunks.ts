/**
 * The chunk table of a chunked fifo (see "Chunked fifo" in `layout.ts`): where each ring byte
 * lives, copies that follow the chunks, and the two sides' rules for taking chunks from the
 * segment and giving them back. A table word is read at the moment of use and checked against
 * the segment: a peer that scribbles on the table gets `SegmentError` "corrupt", never an
 * access outside the segment.
 *
 * @module
 */

import { SegmentError } from "./errors.ts";
import { FIFO_AREA_START, FIFO_HEADER_SIZE } from "./layout.ts";
import type { ByteCopier } from "./byte_copy.ts";

/** Slots behind the head the producer looks at for a chunk left there. */
const TRIM_LOOK_BACK = 4;
/** Chunks taken or given back under one hold of the allocator lock, at most. */
const BATCH = 64;

/** What the table needs of its segment: the words, and chunks from the allocator. */
export interface ChunkSource {
  readonly u32: Uint32Array;
  readonly size: number;
  readonly name: string;
  /**
   * Fills the fifo's empty table words of `batch` in order, with its leftover chunks first and
   * then with chunks of `sizeClass`; gives back the leftovers not needed. Returns how many
   * words it filled (fewer when the segment has no more).
   */
  growChunks(fifo: number, seq: number, sizeClass: number, batch: ChunkBatch): number;
  /** Gives back `chunks[0..count)`, held in the fifo's table words `words[0..count)`. */
  dropChunks(fifo: number, seq: number, words: Uint32Array, chunks: Uint32Array, count: number): void;
}

/** A producer's request to the allocator, made once per handle and refilled for each grow. */
export interface ChunkBatch {
  /** Byte offsets of the empty table words to fill, in order: the first `count` of them. */
  readonly words: Uint32Array;
  count: number;
  /** Leftover chunks of the fifo (the first `spareCount`) and the table words that hold them. */
  readonly spares: Uint32Array;
  readonly spareWords: Uint32Array;
  spareCount: number;
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
  /** Byte offset of table word 0. */
  readonly #table: number;
  /** The words and chunks of one batch for the allocator (allocated once). */
  readonly #words = new Uint32Array(BATCH);
  readonly #batch = new Uint32Array(BATCH);
  /** Slot indices of the words in #words, for a grow that stops short. */
  readonly #slotsOf = new Uint32Array(BATCH);
  /** The producer's grow request: the words of #words, and leftover chunks behind the head. */
  readonly #grow: ChunkBatch = {
    words: this.#words,
    count: 0,
    spares: new Uint32Array(TRIM_LOOK_BACK),
    spareWords: new Uint32Array(TRIM_LOOK_BACK),
    spareCount: 0,
  };
  /** Largest offset a chunk may start at and still end inside the segment. */
  readonly #lastStart: number;

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
    this.#table = fifo + FIFO_HEADER_SIZE;
    this.#lastStart = src.size - FIFO_HEADER_SIZE - chunkBytes;
  }

  /** Bytes of each data chunk. */
  get chunkBytes(): number {
    return this.#bytes;
  }

  /** The data chunks the table holds now. */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.#slots; i++) if (Atomics.load(this.#u32, (this.#table >>> 2) + i) !== 0) n++;
    return n;
  }

  /** The chunk of slot `slot`, or 0 when it has none; a word that points outside the segment is corruption. */
  #chunk(slot: number): number {
    const chunk = Atomics.load(this.#u32, (this.#table >>> 2) + slot);
    if (chunk !== 0 && (chunk < FIFO_AREA_START || chunk > this.#lastStart)) this.#badWord(slot, chunk);
    return chunk;
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

  /** Whether every slot that ring bytes [at, at + n) touch has a chunk (n > 0). */
  present(at: number, n: number): boolean {
    let slot = at >>> this.#shift;
    const last = (at + n - 1) >>> this.#shift; // may pass the last slot: the range wraps
    for (let i = slot; i <= last; i++) {
      if (this.#chunk(slot) === 0) return false;
      if (++slot === this.#slots) slot = 0;
    }
    return true;
  }

  /**
   * The producer's step before it writes ring bytes [at, at + n): fills every slot they touch
   * that has no chunk, first with leftover chunks wholly behind the head (ring index `headAt`)
   * that lie past what the producer uses (`reach` bytes from the head: what is stored, plus
   * out-of-order data and this write), then from the segment; leftovers not needed go back. Returns how many bytes from `at` have chunks now:
   * n, or less when the segment ran out of chunks.
   */
  provide(at: number, n: number, headAt: number, reach: number): number {
    const grow = this.#grow;
    grow.spareCount = this.#leftovers(headAt, reach);
    const last = (at + n - 1) >>> this.#shift; // may pass the last slot: the range wraps
    for (let i = at >>> this.#shift; i <= last;) {
      let count = 0;
      for (; i <= last && count < BATCH; i++) {
        const slot = i < this.#slots ? i : i - this.#slots;
        if (this.#chunk(slot) !== 0) continue;
        this.#words[count] = this.#word(slot);
        this.#slotsOf[count++] = i;
      }
      if (count === 0 && grow.spareCount === 0) continue;
      grow.count = count;
      const filled = this.#src.growChunks(this.#fifo, this.#seq, this.#sizeClass, grow);
      grow.spareCount = 0; // moved in, or given back
      if (filled < count) {
        const have = this.#slotsOf[filled] * this.#bytes - at; // bytes before the first slot left empty
        return have > 0 ? have : 0;
      }
    }
    return n;
  }

  /**
   * Finds the chunks behind the head that the producer does not use (see `provide`): the one
   * the consumer kept when it drained the fifo at a slot's end, just behind the head (a few
   * slots back, in case the head moved on before the producer came here). Returns how many.
   */
  #leftovers(headAt: number, reach: number): number {
    let slot = headAt >>> this.#shift;
    const look = Math.min(this.#slots - 1, TRIM_LOOK_BACK);
    let count = 0;
    for (let i = 0; i < look; i++) {
      slot = slot === 0 ? this.#slots - 1 : slot - 1;
      let from = slot * this.#bytes - headAt; // the slot's distance from the head
      if (from < 0) from += this.#ring;
      if (from < reach) break;
      const chunk = this.#chunk(slot);
      if (chunk === 0) continue;
      this.#grow.spareWords[count] = this.#word(slot);
      this.#grow.spares[count++] = chunk;
    }
    return count;
  }

  /**
   * The consumer's step after it read ring bytes [at, at + n) and before it publishes the head
   * past them: gives back the chunks of the slots it read to their end, except the last one when
   * the head stops at its end and the next slot has no chunk (a drained fifo keeps one chunk).
   */
  passed(at: number, n: number): void {
    const within = at & (this.#bytes - 1);
    if (within + n < this.#bytes) return; // no slot read to its end
    const ends = (within + n) >>> this.#shift; // slots read to their end
    const stop = (within + n) & (this.#bytes - 1); // where the head stops in its slot
    let slot = at >>> this.#shift;
    let count = 0;
    for (let i = 0; i < ends; i++) {
      const next = slot + 1 === this.#slots ? 0 : slot + 1;
      // Kept: the last slot read when the head stops at its end with nothing after it. (A read
      // never ends in the slot it began in: the ring is a chunk larger than what can be stored.)
      const keep = i === ends - 1 && stop === 0 && this.#chunk(next) === 0;
      const chunk = this.#chunk(slot);
      if (!keep && chunk !== 0) {
        this.#words[count] = this.#word(slot);
        this.#batch[count] = chunk;
        if (++count === BATCH) {
          this.#src.dropChunks(this.#fifo, this.#seq, this.#words, this.#batch, count);
          count = 0;
        }
      }
      slot = next;
    }
    if (count > 0) this.#src.dropChunks(this.#fifo, this.#seq, this.#words, this.#batch, count);
  }

  /** Byte offset of slot `slot`'s table word. */
  #word(slot: number): number {
    return this.#table + slot * 4;
  }
}
