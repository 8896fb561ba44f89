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
 *   512 u32  bump             offset of the first byte never carved into a chunk
 *   516 u32  flags            bit 0: preallocated (allocate only from the freelists)
 *   520 u32  allocator lock   process tag of the holder, 0 when free (see "Process tags")
 *   524 u32  allocation seq   last allocation number handed out (never 0); orders fifos()
 *   528 u32  journal op       the holder's operation in progress: 0 none, 1 pop, 2 carve, 3 free,
 *                             4 grow (a chunk for a chunked fifo), 5 drop (one chunk of it),
 *                             6 free a chunked fifo (its chunks, then its header)
 *   532 u32  journal chunk    the chunk (pop, free) or the bump before carving (carve)
 *   536 u32  journal class    the size class the operation works on
 *   540 u32  creator tag      process tag of the creator
 *   544 u32  journal target   the table word a grow fills, or the table or hand word a drop clears
 *   548 ..575 reserved
 *   576 u32[SIZE_CLASSES] freelist heads, one per size class: offset of the first free fifo
 *            (0 = empty); changed only under the allocator lock
 *   1024 process table: PROC_SLOTS entries of 8 bytes, one per attached process
 *        +0 u32 tag   (generation << 8 | slot), rewritten with a new generation by each claimer
 *        +4 u32 pid   of the claimer, for display
 * Sleeper table: page 1 (bytes 4096..8191), SLEEPER_ENTRY_SIZE bytes per process slot, written by
 * the slot's holder when it first sleeps asynchronously (see "Waking through the event loop")
 *   +0  u32 tag      the holder's tag when it wrote the entry (wakers ignore an entry of another tag)
 *   +4  u32 flags    bit 0 PARKED: the holder sleeps and wants its doorbell rung;
 *                    bit 1 SCAN: an event was lost (its ring was full): re-check every wait
 *                    bit 2 FEW: the holder's pending waits watched at most four chunks when it
 *                    last parked (a hint: its wakers set SCAN instead of pushing events)
 *   +8  u32 events   offset of the holder's event ring (a chunk of kind 2), 0 = none (SCAN mode)
 *   +12 u32 doorbell key: the doorbell is the abstract Unix socket "svm-wake-<key as 8 hex digits>"
 *           and, where the holder watches it through node:net, a pipe handed out at
 *           "svm-wake-<key>-pipe" (see "The doorbell's pipe" below)
 * Fifo area: from FIFO_AREA_START to the segment's end, carved into chunks.
 *
 * Process tags: a process (one SegmentMain) that maps a segment claims a free slot of its
 * process table by taking an open-file-description lock (fcntl F_OFD_SETLK) on the byte at file
 * position PROC_LOCK_BASE + slot, far past the end of the data, and holds it for as long as it
 * has the segment mapped; the kernel drops it when the process dies. The creator holds slot 0
 * from before it formats. A tag names a slot and the generation that claimed it, so a tag is
 * alive while the table still shows it and its lock byte is held. In a private segment (one
 * process) every tag is PRIVATE_TAG and always alive. Generations have 23 bits, so a tag never
 * has bit 31 set: a waiter word uses it (WAITER_SYNC).
 *
 * Waking through the event loop (mapped segments): a process that waits asynchronously writes
 * its tag into the fifo's waiter word and sleeps in its event loop, watching its doorbell, a
 * listening abstract-namespace Unix stream socket (one per SegmentMain; nothing in the file
 * system; it vanishes with the process). A producer that finds the waiter word set clears it
 * with a compare-and-swap (so one event per sleep: VPP's has_event), pushes the chunk's offset
 * onto the sleeper's event ring, and, only if the sleeper's PARKED flag was set (it clears it
 * with an atomic and), writes one byte to the doorbell: a system call only when the other side
 * sleeps. The sleeper drains its ring, re-checks the waits on those chunks, re-arms the waiter
 * words of waits that go on, sets PARKED and drains once more before it waits for the next
 * byte. A holder keeps a bounded number of connections (anyone may connect to an abstract
 * socket) and may close one at any time, reading that as a ring: a waker whose ring fails
 * (EPIPE, ECONNRESET) connects again and rings once more. (A sleeper whose waits watch few
 * chunks sets FEW as it parks: its wakers then set SCAN in its flags, the word that holds
 * PARKED, instead of pushing events.) A member of a WaitSet
 * is a wait that stays: the holder re-arms its word only when a look finds it not ready, and the
 * events that come while no wait is parked wait in the ring for the next one. A waiter word with
 * WAITER_SYNC set belongs to a thread blocked in FUTEX_WAIT on the sequence word before it: the
 * producer bumps that word and wakes the futex instead.
 *
 * The doorbell's pipe: a byte through a pipe wakes the other core sooner than one through a Unix
 * socket (no socket buffer to allocate and free). So a holder that watches its socket through
 * `node:net` (Deno, Node) also makes a pipe, watches its read end the same
 * way, and listens on the SOCK_SEQPACKET gate named by doorbellPipeGate, where each connection is sent the write end
 * (SCM_RIGHTS) and closed. A waker connects to the gate before its first ring (which goes
 * through the socket; the holder answers the gate when a ring comes through the socket, and at
 * its liveness tick), takes the fd at a later ring, checks that it is a pipe's write end, and
 * from then on rings with a one-byte write to it. A waker never writes to a pipe unless its
 * process ignores SIGPIPE (all three runtimes do): a holder that died then costs an EPIPE.
 *
 * Chunk = fifo header (FIFO_HEADER_SIZE bytes, four 64-byte lines) + data (class bytes)
 *   line 0, allocator and identity (written at allocation and free, under the allocator lock)
 *   +0   u32  chunk length     header + data, written when the chunk is carved
 *   +4   u32  magic            FIFO_MAGIC
 *   +8   u32  state            1 free, 2 live
 *   +12  u32  refcount
 *   +16  u32  capacity         bytes the ring holds, exactly what was asked for
 *   +20  u32  size class       data bytes = 4096 << class
 *   +24  u32  next free        offset of the next fifo on the freelist (0 = none)
 *   +28  u32  list             0 none, 1 rx, 2 tx
 *   +32  u32  tag              the user's
 *   +36  u32  allocation seq   this allocation's number while live, 0 while free: a handle
 *                              remembers it and fails once the fifo was freed or reallocated
 *   +40  u32  master session index   +44 u32 master thread index
 *   +48  u32  client session index   +52 u32 client thread index
 *   +56  u32  owner            process tag of the allocator
 *   +60  u32  kind             what the chunk holds: 0 a byte fifo, 1 a message queue, 2 an event ring,
 *                              3 a message ring, 4 a data chunk of a chunked fifo
 *   line 1, written only by the consumer
 *   +64  u32  head             bytes dequeued, counted modulo the fifo's period (below)
 *   line 2, written only by the producer
 *   +128 u32  tail             bytes enqueued, counted modulo the period
 *   +132 u32  producer hand    a chunked fifo's data chunk the producer is moving (below)
 *   line 3, signalling (both sides)
 *   +192 i32  has event        0/1, set and cleared with atomic exchange
 *   +196 i32  want dequeue notification   flags the producer sets, the consumer reads after a
 *                              dequeue: 1 always (once free space reaches the threshold), 2 if
 *                              the dequeue ended a full fifo, 4 if it emptied the fifo
 *   +200 i32  data sequence    futex word: bumped by the producer when a reader waits
 *   +204 u32  data waiter      the sleeping reader (see waiters.ts); 0 = nobody sleeps
 *   +208 i32  space sequence   futex word: bumped by the consumer when a writer waits
 *   +212 u32  space waiter     the sleeping writer; 0 = nobody sleeps
 *   +216 i32  closed           1 once the producer ends the stream, 2 when it aborted it
 *   +220 u32  producer         tag of the process that last wrote (or waited for space), 0 = none
 *   +224 u32  consumer         tag of the process that last read (or waited for data), 0 = none
 *                              the peer of a side is the other side's tag, or the owner's until
 *                              the other side shows up; a dead peer ends waits with "peer-gone"
 *   +228 u32  dequeue threshold  free bytes an "always" notification waits for (0: any dequeue)
 *   +232 i32  has dequeue notification  1 once the consumer sent an if-full or if-empty one; the
 *                              producer clears it to be told again
 *   +236 u32  space wanted     bytes the sleeping writer waits for: the consumer rings it only
 *                              once that much is free (0 or more than the capacity: at any dequeue)
 *   +240 u32  chunk bytes      0 for a contiguous fifo; for a chunked one the bytes of each of its
 *                              data chunks, a class size from 4 KiB to 4 MiB (see below)
 *   +244 u32  size             a chunked fifo's cap: the producer writes only while fewer bytes are
 *                              stored (1 .. capacity; set by either side at any time)
 *   +248 u32  spare chunks     a chunked fifo's K: chunks the consumer may leave behind the head
 *                              for the producer while data flows (read once per handle; at most
 *                              64, and at most the slots less one)
 *   +256 data: the ring of a contiguous fifo; a chunked fifo's chunk table
 *
 * Chunked fifo: the ring of `capacity` bytes (a multiple of the chunk bytes C, one chunk more
 * than the largest size, so that the producer never reaches the slot the consumer reads in) is
 * cut into capacity / C slots; the header chunk's data area is the table, one u32 per slot (each
 * on its own 64-byte line, CHUNK_TABLE_STRIDE): the offset of the data chunk (kind 4) that holds
 * ring bytes [slot * C, slot * C + C), or 0 when none does. Ring
 * positions, head and tail work as in a contiguous fifo; a byte at ring index i lives at
 * table[i / C] + FIFO_HEADER_SIZE + i % C. A data chunk's header is a chunk header (line 0; its
 * capacity is C, its allocation number 1: it has no handles) with +64 u32 the offset of the
 * fifo it belongs to. Bit 0 of a table word (KEPT) marks a chunk the consumer read past and left
 * in its slot for the producer: a slot wholly behind the head whose chunk either side may claim
 * with one compare-and-swap; bit 1 (CLAIMED) a kept chunk the consumer claimed and is giving back
 * (under the allocator lock, where the producer may still take it back). Who changes a table word:
 * - the consumer, before it publishes the head past the slots it read to their end: the last K
 *   of them (K the spare chunks word; with K = 0, the last one when the read drained the fifo,
 *   the head stops at its end and the next slot is empty) get KEPT, the others go back to the
 *   segment; a KEPT chunk the head has now left more than K slots behind it claims (KEPT ->
 *   CLAIMED) and gives back, and so all of them but one (the nearest, when the head's slot is
 *   empty) when it is about to wait on the empty fifo, has found it empty for 50 ms (IDLE_MS),
 *   or closed;
 * - the producer, before it writes into a slot: a KEPT word there it claims in place (clears the
 *   bit); an empty one it fills with a KEPT chunk claimed from a slot wholly behind the head
 *   (that word -> 0, then the new word; not one a slot or two ahead of it, which it would
 *   only have to fill again next, unless the segment has none), else with a chunk from the
 *   segment; a CLAIMED one it takes back under the allocator lock if the consumer has not given
 *   it back yet.
 * Chunks from and to the segment go under the allocator lock with its journal (a give-back
 * checks under the lock that the word still holds what the consumer saw); claims take no lock.
 * The producer writes a chunk it moves into its hand word before it claims it and clears the
 * hand once the chunk is in its new word, so a process killed at any point leaves each chunk
 * in a table word (with any flags), in the hand, or on its freelist. A hand found set when a
 * producer starts a step is settled: cleared if the chunk is in a table word, else the chunk goes
 * back; freeing the fifo gives back its table's chunks and its hand's.
 *
 * Message queue (a live chunk of kind 1): its own header and rings fill the chunk's data area,
 * from D = chunk + FIFO_HEADER_SIZE; the fifo lines 1-3 of the chunk header are unused.
 *   D+0   u32  magic          MQ_MAGIC
 *   D+4   u32  ring count     1 .. MQ_MAX_RINGS
 *   D+64  i32  data seq       futex word: bumped by a producer when the consumer sleeps
 *   D+68  u32  data waiter    the sleeping consumer (waiters.ts)
 *   D+72  i32  space seq      bumped by the consumer when a producer sleeps
 *   D+76  u32  space waiter   a sleeping producer (any of them: the last to arm it)
 *   D+96  u32[8] space sleepers  one bit per process slot (tag & 0xff: bit slot & 31 of word
 *                  slot >> 5), set by each producer process that sleeps for room, because the
 *                  producer processes share the one waiter word. A producer sets its bit, then
 *                  arms the waiter word, then looks for room; a producer process whose wait ends
 *                  leaves the word armed (its arm may have overwritten another's). The consumer,
 *                  after a free, finds the word set, clears it (compare-and-swap, posting to the
 *                  tag it held), then takes every word of bits (exchange with 0) and posts to each
 *                  process named: whichever arm it cleared, the bit of its sleeper was set before.
 *                  A stale or forged bit, or a word left armed, costs a process one look.
 *   D+128 ring descriptors, MQ_RING_SIZE bytes each:
 *     +0  u32 slots N   +4 u32 slot payload bytes   +8 u32 slot stride   +12 u32 slots' offset from D
 *     +64 u32 tail      position of the next slot to claim (producers; any of them moves it on)
 *     +128 u32 head     position of the next slot to read (the consumer)
 *   slots, each ring's N slots of `stride` bytes (8-aligned):
 *     +0  u32 state     position * 4 + 0 (free for that position) or + 1 (ready at that position)
 *     +4  u32 writer    tag of the producer writing it (claimed by CAS 0 -> tag), 0 when free
 *     +8  u32 sender    the sending handle's id      +12 u32 sender seq: 1, 2, 3... per handle
 *     +16 u32 length    +20 u32 claimed position + 1, written by the claimer right after its claim
 *     +24 payload
 *   Positions run modulo the ring's period, N * floor(2^29 / N), so that state words are int32.
 *
 * Event ring (a live chunk of kind 2; one per process that sleeps asynchronously), from D as above
 *   D+0   u32  magic          EVENTS_MAGIC
 *   D+4   u32  owner tag      the sleeping process
 *   D+8   u32  slots N        EVENT_SLOTS, a power of two
 *   D+64  u32  tail           positions claimed by wakers (compare-and-swap), modulo 2^32
 *   D+128 u32  head           positions drained by the owner
 *   D+192 N slots of 8 bytes: +0 u32 position + 1 once written (release), +4 u32 chunk offset
 *   A waker that finds the ring full sets SCAN instead. Events are hints: the sleeper re-checks
 *   what they name, and a slot a waker died before filling is skipped at the next liveness tick.
 *   A waker that finds FEW set sets SCAN instead of pushing (SCAN is always a correct event): a
 *   sleeper with few watches looks at every one of them when rung, and reads neither the ring
 *   nor its flags then, so that no cache line of them stands between the ring and the wake-up.
 *
 * Message ring (a live chunk of kind 3; one producer, one consumer), from D as above
 *   D+0   u32 magic RING_MAGIC     D+4 u32 capacity C of the record area (a power of two)
 *   D+64  u32 tail: bytes published by the producer, modulo 2^32, stored plainly at each publish
 *             for toString() and info only (the consumer finds records by their size words)
 *   D+128 u32 head: bytes released by the consumer, modulo 2^32 (written only by the consumer)
 *   D+192 i32 data seq  +196 u32 data waiter  +200 i32 space seq  +204 u32 space waiter
 *   D+208 i32 closed (1 closed, 2 aborted)  +212 u32 producer tag  +216 u32 consumer tag
 *   D+256 the record area, C bytes. A record: +0 u32 size (bytes of the record with its 8-byte
 *   header, unaligned: the payload's length + 8; 0 = nothing published here yet; bit 31
 *   RECORD_FIRST on the first record of a published batch), +4 i32 type (RING_PADDING = -1 for
 *   the padding that fills the end of the area when a record would not fit before it), then
 *   the payload; records start 8-aligned. A record never wraps, so it is one contiguous range.
 *   The producer writes the headers of a batch plainly except the first record's size, then a
 *   zero size word after the batch's last record (it keeps 8 bytes free there: a ring holds
 *   C - 8 bytes of records), and publishes the batch by storing the first record's size
 *   (Atomics.store, the one fence per batch). The consumer reads the size word at its position
 *   (Atomics.load), follows the records, re-reads with Atomics.load a size that has RECORD_FIRST,
 *   stops at a zero, and stores head before it waits, once a quarter of the area is unreleased,
 *   and at the end of the task.
 *
 * Connections (`sm.listen` / `sm.connect`): one SOCK_SEQPACKET packet each way, little-endian.
 * HELLO, client to listener, HELLO_SIZE bytes:
 *   +0  u32 magic HANDSHAKE_MAGIC   +4 u16 version HANDSHAKE_VERSION   +6 u16 type 1 (HELLO)
 *   +8  u32 the client's doorbell key (the listener rings it when its answer is sent)
 *   +12 ..31 zero
 * ANSWER, listener to client, ANSWER_SIZE bytes plus a reason, and with status 0 two fds (SCM_RIGHTS):
 *   the segment's sealed memfd, and one end of a Unix stream socketpair whose other end the
 *   listener keeps. Each side holds its end while its connection is open; the kernel closes it
 *   when the side closes the connection or its process dies, and the other side, watching its own
 *   end from its event loop, reads the end of the stream. Nothing is ever written on the pair.
 *   +0  u32 magic   +4 u16 version   +6 u16 type 2 (ANSWER)
 *   +8  u32 status  0 accepted, 1 refused (uid), 2 bad hello, 3 no room
 *   +12 u32 zero (version 1 had the listener's doorbell key here)
 *   +16 u32 segment size (the fd is a sealed memfd of this size)
 *   +20 u32 the client's rx fifo (listener to client), offset in the segment
 *   +24 u32 the client's tx fifo (client to listener)
 *   +28 u32 reason length, then +32 the reason in UTF-8 (at most MAX_REASON bytes; status != 0)
 * A listener also listens on a bell, the abstract stream socket bellName(name): a client rings it
 * after its HELLO, so the listener accepts from its event loop; it polls every 100 ms besides.
 *
 * The period of head and tail is the largest multiple of the capacity up to 2^31 (2^31 itself for
 * a power-of-two capacity below 2 GiB; 2^32 for a 2 GiB fifo), so a counter's position in the ring
 * is the counter modulo the capacity: there is no second word that a process killed between two
 * stores could leave disagreeing with it.
 * ```
 *
 * @module
 */

/** Bytes in a page; segment sizes are rounded up to it. */
export const PAGE_SIZE = 4096;
/** "SVM1" read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x314d5653;
/** Bumped on any incompatible change of this file. */
export const LAYOUT_VERSION = 7;
/** Largest segment: offsets are u32. */
export const MAX_SEGMENT_SIZE = 0x1_0000_0000 - PAGE_SIZE;
/** Where chunks start: after the header page and the sleeper table's page. */
export const FIFO_AREA_START = 2 * PAGE_SIZE;
/** Smallest segment: the two header pages plus one page of fifo area. */
export const MIN_SEGMENT_SIZE = FIFO_AREA_START + PAGE_SIZE;
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
export const FS_LOCK = 520;
export const FS_ALLOC_SEQ = 524;
export const FS_JOURNAL_OP = 528;
export const FS_JOURNAL_CHUNK = 532;
export const FS_JOURNAL_CLASS = 536;
export const FS_CREATOR_TAG = 540;
export const FS_JOURNAL_TARGET = 544;
export const FS_FREELISTS = 576;
/** Journal operations. */
export const JOURNAL_NONE = 0;
export const JOURNAL_POP = 1;
export const JOURNAL_CARVE = 2;
export const JOURNAL_FREE = 3;
export const JOURNAL_GROW = 4;
export const JOURNAL_DROP = 5;
export const JOURNAL_FREE_CHUNKED = 6;

/** The process table. */
export const PROC_TABLE = 1024;
export const PROC_SLOTS = 256;
export const PROC_ENTRY_SIZE = 8;
export const PROC_TAG = 0;
export const PROC_PID = 4;
/** File position of slot 0's lock byte; far past any segment's data. */
export const PROC_LOCK_BASE = 2 ** 40;
/** The tag of every holder in a private segment, where nobody dies alone. */
export const PRIVATE_TAG = 1;
/** Largest generation of a tag: 23 bits, so that bit 31 of a waiter word is free. */
export const TAG_GENERATIONS = 0x7f_ffff;
/** Bit 31 of a waiter word: the sleeper blocks a thread in FUTEX_WAIT (a Sync wait). */
export const WAITER_SYNC = 0x8000_0000;

/** The sleeper table: one entry per process slot, in page 1. */
export const SLEEPER_TABLE = PAGE_SIZE;
export const SLEEPER_ENTRY_SIZE = 16;
export const SLP_TAG = 0;
export const SLP_FLAGS = 4;
export const SLP_EVENTS = 8;
export const SLP_KEY = 12;
/** Flags of a sleeper entry. */
export const SLEEPER_PARKED = 1;
export const SLEEPER_SCAN = 2;
export const SLEEPER_FEW = 4;
/** The doorbell's abstract socket name for a key. */
export function doorbellName(key: number): string {
  return `svm-wake-${(key >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * The abstract SOCK_SEQPACKET name where the holder of the doorbell `bell` (a name from
 * {@link doorbellName}) hands out its pipe's write end: each connection gets one packet of one
 * byte carrying the fd (SCM_RIGHTS), then is closed. Nobody listens there when the holder's
 * runtime's own listener watches the socket (Bun).
 */
export function doorbellPipeGate(bell: string): string {
  return `${bell}-pipe`;
}

/** "EVNT" read as a little-endian u32. */
export const EVENTS_MAGIC = 0x544e5645;
export const EVENT_SLOTS = 256;
export const EV_MAGIC = 0;
export const EV_OWNER = 4;
export const EV_SLOTS = 8;
export const EV_TAIL = 64;
export const EV_HEAD = 128;
export const EV_RING = 192;
export const EV_SLOT_SIZE = 8;
/** Data bytes of an event ring chunk. */
export const EVENTS_BYTES = EV_RING + EVENT_SLOTS * EV_SLOT_SIZE;

/** Bit of FS_FLAGS: allocate only from what was preallocated. */
export const FS_FLAG_PREALLOCATED = 1;

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
export const FF_OWNER = 56;
export const FF_KIND = 60;
/** Kinds of chunk. */
export const KIND_FIFO = 0;
export const KIND_MESSAGE_QUEUE = 1;
export const KIND_EVENTS = 2;
export const KIND_MESSAGE_RING = 3;
export const KIND_FIFO_CHUNK = 4;
/** A data chunk's word naming the chunked fifo it belongs to (line 1 of its header). */
export const FC_FIFO = 64;
/** Chunk sizes of a chunked fifo: size classes 0 (4 KiB) to 10 (4 MiB). */
export const MAX_CHUNK_CLASS = 10;
/** The size class whose data bytes are exactly `bytes`, if it is a chunk size of a chunked fifo; -1 if none. */
export function chunkClassOf(bytes: number): number {
  for (let c = 0; c <= MAX_CHUNK_CLASS; c++) if (classBytes(c) === bytes) return c;
  return -1;
}

/** "MSGQ" read as a little-endian u32. */
export const MQ_MAGIC = 0x5147534d;
export const MQ_MAX_RINGS = 8;
export const MQ_RING_COUNT = 4;
export const MQ_DATA_SEQ = 64;
export const MQ_DATA_WAITER = 68;
export const MQ_SPACE_SEQ = 72;
export const MQ_SPACE_WAITER = 76;
/** Eight words of bits, one per process slot: the producer processes asleep for room. */
export const MQ_SPACE_SLEEPERS = 96;
export const MQ_SPACE_SLEEPER_WORDS = 8;
export const MQ_RINGS = 128;
export const MQ_RING_SIZE = 192;
export const MQR_SLOTS = 0;
export const MQR_SLOT_BYTES = 4;
export const MQR_STRIDE = 8;
export const MQR_BASE = 12;
export const MQR_TAIL = 64;
export const MQR_HEAD = 128;
export const MQS_STATE = 0;
export const MQS_WRITER = 4;
export const MQS_SENDER = 8;
export const MQS_SENDER_SEQ = 12;
export const MQS_LENGTH = 16;
export const MQS_CLAIM_POS = 20;
export const MQS_PAYLOAD = 24;
/** Bytes of a queue's header: its own words and the ring descriptors. */
export function messageQueueHeaderBytes(rings: number): number {
  return MQ_RINGS + rings * MQ_RING_SIZE;
}
/** Bytes of one slot carrying up to `slotBytes` of payload. */
export function messageSlotStride(slotBytes: number): number {
  return (MQS_PAYLOAD + slotBytes + 7) & ~7;
}
/** The period of a ring's positions. */
export function ringPeriod(slots: number): number {
  return slots * Math.floor(2 ** 29 / slots);
}
export const FF_HEAD = 64;
export const FF_TAIL = 128;
export const FF_HAS_EVENT = 192;
export const FF_WANT_DEQ_NTF = 196;
export const FF_DATA_SEQ = 200;
export const FF_DATA_WAITER = 204;
export const FF_SPACE_SEQ = 208;
export const FF_SPACE_WAITER = 212;
export const FF_CLOSED = 216;
export const FF_PRODUCER = 220;
export const FF_CONSUMER = 224;
export const FF_DEQ_THRESHOLD = 228;
export const FF_HAS_DEQ_NTF = 232;
export const FF_SPACE_WANTED = 236;
export const FF_CHUNK_BYTES = 240;
export const FF_SIZE = 244;
export const FF_SPARE_CHUNKS = 248;
export const FF_PRODUCER_HAND = 132;
/** Bit of a chunked fifo's table word: the chunk was read past and left for the producer. */
export const CHUNK_KEPT = 1;
/** Bit of a chunked fifo's table word: the consumer claimed a kept chunk and gives it back. */
export const CHUNK_CLAIMED = 2;
/** The flag bits of a table word; the rest is the chunk's offset (chunks start 256-aligned). */
export const CHUNK_FLAGS = CHUNK_KEPT | CHUNK_CLAIMED;
/** The chunk a chunked fifo's table (or hand) word names, its flag bits off; 0 for none. */
export function tableChunk(word: number): number {
  return word - (word & CHUNK_FLAGS);
}
/**
 * Bytes between two words of a chunked fifo's table: one cache line each, so that the two sides
 * writing the words of different slots do not take each other's line away.
 */
export const CHUNK_TABLE_STRIDE = 64;
/** Index in the segment's u32 words of table word `slot` of the chunked fifo at `fifo`. */
export function chunkTableWord(fifo: number, slot: number): number {
  return (fifo + FIFO_HEADER_SIZE + slot * CHUNK_TABLE_STRIDE) >>> 2;
}
/** Most spare chunks a chunked fifo keeps (more in its header word are read as this many). */
export const MAX_SPARE_CHUNKS = 64;
/** Dequeue notification flags (the word at FF_WANT_DEQ_NTF). */
export const DEQ_NTF_ALWAYS = 1;
export const DEQ_NTF_IF_FULL = 2;
export const DEQ_NTF_IF_EMPTY = 4;
/** Values of FF_CLOSED. */
export const CLOSED_CLEAN = 1;
export const CLOSED_ABORTED = 2;
/** Words from a sequence word to its waiter word (both kinds of wait are laid out alike). */
export const WAITER_AFTER_SEQ = (FF_DATA_WAITER - FF_DATA_SEQ) / 4;

/** Data bytes of a size class. */
export function classBytes(sizeClass: number): number {
  return MIN_CLASS_BYTES * 2 ** sizeClass;
}

/** Bytes of a chunk of a class: header and data. */
export function chunkBytes(sizeClass: number): number {
  return FIFO_HEADER_SIZE + classBytes(sizeClass);
}

/** Whether `length` is the chunk length of some size class. */
export function isChunkLength(length: number): boolean {
  for (let c = 0; c < SIZE_CLASSES; c++) if (chunkBytes(c) === length) return true;
  return false;
}

/**
 * The period of a fifo's head and tail counters: the largest multiple of `capacity` up to 2^31,
 * so that counters, distances and ring indices are all int32 values (which both engines compile
 * to integer code); 2^32 for the one capacity that needs more, 2 GiB.
 */
export function counterPeriod(capacity: number): number {
  return capacity < 2 ** 31 ? capacity * Math.floor(2 ** 31 / capacity) : 2 ** 32;
}

/** "SVMH" read as a little-endian u32: the handshake of a connection. */
export const HANDSHAKE_MAGIC = 0x484d5653;
export const HANDSHAKE_VERSION = 2;
export const HS_MAGIC = 0;
export const HS_VERSION = 4;
export const HS_TYPE = 6;
export const HS_TYPE_HELLO = 1;
export const HS_TYPE_ANSWER = 2;
export const HELLO_SIZE = 32;
export const HELLO_DOORBELL = 8;
export const ANSWER_SIZE = 32;
export const ANS_STATUS = 8;
export const ANS_SEGMENT_SIZE = 16;
export const ANS_RX = 20;
export const ANS_TX = 24;
export const ANS_REASON_LENGTH = 28;
export const ANS_REASON = 32;
export const MAX_REASON = 200;
/** Answer statuses. */
export const ANSWER_ACCEPTED = 0;
export const ANSWER_REFUSED = 1;
export const ANSWER_BAD_HELLO = 2;
export const ANSWER_NO_ROOM = 3;
/** The bell of the listener at `name`: an abstract stream socket. */
export function bellName(name: string): string {
  return name.includes("/") ? `svm-bell:${name.replaceAll("/", "|")}` : `${name}#bell`;
}

/** "MRNG" read as a little-endian u32. */
export const RING_MAGIC = 0x474e524d;
export const RG_MAGIC = 0;
export const RG_CAPACITY = 4;
export const RG_TAIL = 64;
export const RG_HEAD = 128;
export const RG_DATA_SEQ = 192;
export const RG_DATA_WAITER = 196;
export const RG_SPACE_SEQ = 200;
export const RG_SPACE_WAITER = 204;
export const RG_CLOSED = 208;
export const RG_PRODUCER = 212;
export const RG_CONSUMER = 216;
export const RG_RECORDS = 256;
/** A record's header: u32 size (with the header; 0 while unpublished), i32 type. */
export const RECORD_HEADER = 8;
/** The size word's mark of a batch's first record (its sign bit, as an i32), and the size itself. */
export const RECORD_FIRST = -0x80000000;
export const RECORD_SIZE_MASK = 0x7fffffff;
export const RING_PADDING = -1;
/** Smallest and largest record area of a message ring. */
export const MIN_RING_CAPACITY = 1024;
export const MAX_RING_CAPACITY = 1 << 30;
