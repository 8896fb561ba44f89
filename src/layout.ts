/**
 * Every byte offset of the shared layout, in one place. All numbers are little-endian. All
 * positions stored in shared memory are byte offsets from the segment's start, never addresses:
 * each process maps a segment wherever its kernel likes.
 *
 * ```text
 * Segment header: page 0 (bytes 0..4095)
 *   0   u32  magic            SEGMENT_MAGIC
 *   4   u32  layout version   LAYOUT_VERSION
 *   8   u64  segment size     bytes, a multiple of PAGE_SIZE
 *   16  u32  creator pid
 *   20  u32  type             1 shm, 2 memfd, 3 private
 *   24  i32  ready            0 while the creator formats, 1 after (release store; futex word)
 *   28  u32  name length      bytes of UTF-8 in the name field
 *   32  u8[256] name          UTF-8, not NUL-terminated
 *   288 ..511 reserved (zero)
 * Fifo-segment header (same page, from byte 512)
 *   512 u32  bump             offset of the first byte never handed out (claim word lives there)
 *   516 u32  flags            bit 0: preallocated (allocate only from the freelists)
 *   520 u32  reserved         (fifos in use are counted by walking the chunks)
 *   524 u32  allocation seq   incremented for each allocation; orders fifos()
 *   528 ..575 reserved
 *   576 u64[SIZE_CLASSES] freelist heads, one per size class: low 32 bits the offset of the
 *            first free fifo (0 = empty), high 32 bits an ABA tag bumped on every change
 * Fifo area: from FIFO_AREA_START to the segment's end, carved into chunks.
 *
 * Chunk = fifo header (FIFO_HEADER_SIZE bytes, four 64-byte lines) + data (class bytes)
 *   line 0, allocator and identity (written at allocation and free)
 *   +0   u32  chunk length     the claim word: header + data, written before the bump moves
 *   +4   u32  magic            FIFO_MAGIC
 *   +8   u32  state            1 free, 2 live
 *   +12  u32  refcount
 *   +16  u32  capacity         bytes the ring holds, exactly what was asked for
 *   +20  u32  size class       data bytes = 4096 << class
 *   +24  u32  next free        offset of the next fifo on the freelist (0 = none)
 *   +28  u32  list             0 none, 1 rx, 2 tx
 *   +32  u32  tag              the user's
 *   +36  u32  allocation seq
 *   +40  u32  master session index   +44 u32 master thread index
 *   +48  u32  client session index   +52 u32 client thread index
 *   line 1, written only by the consumer
 *   +64  u32  head             free-running count of bytes dequeued (mod 2^32)
 *   +68  u32  head index       head's position in the ring, 0 <= index < capacity
 *   line 2, written only by the producer
 *   +128 u32  tail             free-running count of bytes enqueued (mod 2^32)
 *   +132 u32  tail index       tail's position in the ring
 *   line 3, signalling (both sides)
 *   +192 i32  has event        0/1, set and cleared with atomic exchange
 *   +196 i32  want dequeue notification   set by a producer that found the fifo full
 *   +200 i32  data sequence    futex word: bumped by the producer when a reader waits
 *   +204 i32  data waiters     readers announced as sleeping
 *   +208 i32  space sequence   futex word: bumped by the consumer when a writer waits
 *   +212 i32  space waiters    writers announced as sleeping
 *   +216 i32  closed           1 once the producer ends the stream
 *   +256 data
 * ```
 *
 * @module
 */

/** Bytes in a page; segment sizes are rounded up to it. */
export const PAGE_SIZE = 4096;
/** "SVM1" read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x314d5653;
/** Bumped on any incompatible change of this file. */
export const LAYOUT_VERSION = 1;
/** Largest segment: offsets are u32. */
export const MAX_SEGMENT_SIZE = 0x1_0000_0000 - PAGE_SIZE;
/** Smallest segment: the header page plus one page of fifo area. */
export const MIN_SEGMENT_SIZE = 2 * PAGE_SIZE;
/** Longest segment name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

export const SEG_MAGIC = 0;
export const SEG_VERSION = 4;
export const SEG_SIZE = 8;
export const SEG_CREATOR_PID = 16;
export const SEG_TYPE = 20;
export const SEG_READY = 24;
export const SEG_NAME_LENGTH = 28;
export const SEG_NAME = 32;

export const FS_BUMP = 512;
export const FS_FLAGS = 516;
export const FS_ALLOC_SEQ = 524;
export const FS_FREELISTS = 576;
/** Bit of FS_FLAGS: allocate only from what was preallocated. */
export const FS_FLAG_PREALLOCATED = 1;

/** Where chunks start. */
export const FIFO_AREA_START = PAGE_SIZE;
/** Smallest class: 4 KiB of data. */
export const MIN_CLASS_BYTES = 4096;
/** Classes 0 (4 KiB) .. 19 (2 GiB). */
export const SIZE_CLASSES = 20;
/** Largest fifo capacity. */
export const MAX_FIFO_SIZE = MIN_CLASS_BYTES << (SIZE_CLASSES - 1) >>> 0;

export const SEGMENT_TYPE_CODES = { shm: 1, memfd: 2, private: 3 } as const;

/** "FIFO" read as a little-endian u32. */
export const FIFO_MAGIC = 0x4f464946;
export const FIFO_HEADER_SIZE = 256;
export const FIFO_STATE_FREE = 1;
export const FIFO_STATE_LIVE = 2;
export const FIFO_LIST_CODES = { none: 0, rx: 1, tx: 2 } as const;

export const FF_CHUNK_LENGTH = 0;
export const FF_MAGIC = 4;
export const FF_STATE = 8;
export const FF_REFCOUNT = 12;
export const FF_CAPACITY = 16;
export const FF_CLASS = 20;
export const FF_NEXT_FREE = 24;
export const FF_LIST = 28;
export const FF_TAG = 32;
export const FF_ALLOC_SEQ = 36;
export const FF_MASTER_SESSION = 40;
export const FF_MASTER_THREAD = 44;
export const FF_CLIENT_SESSION = 48;
export const FF_CLIENT_THREAD = 52;
export const FF_HEAD = 64;
export const FF_HEAD_INDEX = 68;
export const FF_TAIL = 128;
export const FF_TAIL_INDEX = 132;
export const FF_HAS_EVENT = 192;
export const FF_WANT_DEQ_NTF = 196;
export const FF_DATA_SEQ = 200;
export const FF_DATA_WAITERS = 204;
export const FF_SPACE_SEQ = 208;
export const FF_SPACE_WAITERS = 212;
export const FF_CLOSED = 216;

/** Data bytes of a size class. */
export function classBytes(sizeClass: number): number {
  return MIN_CLASS_BYTES * 2 ** sizeClass;
}

/** Bytes of a chunk of a class: header and data. */
export function chunkBytes(sizeClass: number): number {
  return FIFO_HEADER_SIZE + classBytes(sizeClass);
}
