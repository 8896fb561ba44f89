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
  | "corrupt"; // shared state that breaks the layout's rules (a misbehaving peer)

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
