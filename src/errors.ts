/**
 * Errors about segments and fifos that are not failed system calls. A failed system call is an
 * `OsError` (from `ffi/os_error.ts`); a bad argument is a `RangeError` or `TypeError`.
 *
 * @module
 */

/** What went wrong, as a stable string to branch on. */
export type SegmentErrorCode =
  | "bad-magic" // the object is not one of our segments
  | "bad-version" // it is, but of another layout version
  | "bad-header" // a header field is out of range (size, name, type)
  | "not-sealed" // a memfd that can still shrink, so a mapping of it could SIGBUS
  | "type-mismatch" // attached as one type, created as another
  | "timeout" // the creator never set ready
  | "deleted" // used after delete
  | "not-in-main" // a segment that belongs to another SegmentMain
  | "corrupt" // shared state that breaks the layout's rules (a misbehaving peer)
  | "freed" // a fifo handle whose fifo was freed (and perhaps allocated again since)
  | "full" // every process slot of the segment is held by a live process
  | "abandoned" // the creator died before the segment was ready
  | "not-a-file" // the name or fd is not a regular file (a FIFO, a tty, a directory)
  | "untrusted" // owned by another user, or open to group or others
  | "peer-gone" // the process at the other end of a fifo or queue died
  | "aborted" // the producer aborted the stream
  | "refused" // a listener refused the connection (its reason follows)
  | "handshake" // a malformed or unexpected handshake message
  | "in-use" // a live listener holds the name
  | "no-memory"; // the segment has no chunk left for a chunked fifo's bytes

/** A segment or fifo that cannot be used as asked. */
export class SegmentError extends Error {
  /** What went wrong. */
  readonly code: SegmentErrorCode;
  /** An error of kind `code`. */
  constructor(code: SegmentErrorCode, message: string) {
    super(message);
    this.name = "SegmentError";
    this.code = code;
  }
}
