/**
 * Shared-memory fifo segments for Deno and Bun, after FD.io VPP's "svm".
 *
 * A {@link SegmentMain} creates or attaches segments (POSIX shm, memfd, or process-private
 * memory); inside a {@link Segment} live lock-free single-producer single-consumer byte
 * {@link Fifo}s through which two processes, in either runtime, stream bytes without a system
 * call, {@link MessageRing}s that carry framed records (written and read in place, published in
 * batches), and {@link MessageQueue}s through which many producer processes send messages to one
 * consumer. Each has waits that sleep in the event loop ({@link waitAny} and a {@link WaitSet} wait on
 * many at once), and fifos and rings have web streams. A
 * process killed at any instruction leaves no stream shifted, no chunk lost and no queue wedged;
 * see the README's guarantees.
 *
 * ```ts
 * import { SegmentMain } from "./mod.ts";
 *
 * using sm = new SegmentMain();
 * const segment = sm.create({ type: "shm", name: `demo-${Date.now()}`, size: 1 << 20 });
 * const fifo = segment.allocFifo(64 * 1024, "rx")!;
 * fifo.enqueue(new TextEncoder().encode("hello"));
 * // another process: sm.attach({ type: "shm", name }).fifoAt(fifo.offset).dequeue(buf)
 * ```
 *
 * @module
 */

export { SegmentMain } from "./src/segment/segment_main.ts";
export type { AttachArgs, CreateArgs, SegmentMainOptions } from "./src/segment/segment_main.ts";
export { formatBytes, formatMemory, Segment } from "./src/segment/segment.ts";
export type {
  FifoOptions,
  MemoryPressure,
  MemoryStatus,
  MemoryWatermarks,
  SegmentInfo,
} from "./src/segment/segment.ts";
export type { SegmentType } from "./src/segment/segment_header.ts";
export { Fifo } from "./src/fifo/fifo.ts";
export { waitAny } from "./src/wake/wait_any.ts";
export { WaitSet } from "./src/wake/wait_set.ts";
export { MessageRing } from "./src/ring/message_ring.ts";
export type { RecordHandler } from "./src/ring/message_ring.ts";
export type { RingRecord } from "./src/ring/ring_streams.ts";
export { Connection } from "./src/connection/connection.ts";
export type { MessageOptions, PeerCredentials } from "./src/connection/connection.ts";
export { Listener } from "./src/connection/listener.ts";
export type { ConnectOptions, ListenOptions, Refusal } from "./src/connection/listener.ts";
export { MessageQueue } from "./src/queue/message_queue.ts";
export type { MessageQueueSpec, RingSpec } from "./src/queue/message_queue.ts";
export type { DequeueNotification, FifoList, OooSegment, WaitOptions } from "./src/fifo/fifo.ts";
export { SegmentError } from "./src/errors.ts";
export type { SegmentErrorCode } from "./src/errors.ts";
export { OsError } from "./ffi/os_error.ts";
export { MAX_FIFO_SIZE, MAX_NAME_BYTES, MAX_SEGMENT_SIZE, PAGE_SIZE } from "./src/layout.ts";
export type { FileStat, FutexResult, Mapping, Os } from "./ffi/os.ts";
