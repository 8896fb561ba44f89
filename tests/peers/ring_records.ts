// The records of the message ring tests: each record's length, type and bytes follow from its
// number, so that either side can check every byte without sharing anything else.
import { patternByte } from "../helpers.ts";

/** Length (0 to max) and type of record `i`. */
export function recordShape(i: number, max: number): { length: number; type: number } {
  const r = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  // Mostly small records, one in eight up to 4 KiB, one in a thousand up to the maximum.
  const length = (r & 1023) === 0 ? r % (max + 1) : (r & 7) === 0 ? r % (Math.min(max, 4096) + 1) : r % 97;
  return { length, type: (r >>> 8) & 0xffff };
}

/** Writes record `i`'s bytes at `at`. */
export function fillRecord(bytes: Uint8Array, at: number, length: number, i: number): void {
  for (let k = 0; k < length; k++) bytes[at + k] = patternByte(k, i);
}

/** Whether the record at `at` is record `i`, byte for byte. */
export function checkRecord(
  bytes: Uint8Array,
  at: number,
  length: number,
  type: number,
  i: number,
  max: number,
): boolean {
  const shape = recordShape(i, max);
  if (length !== shape.length || type !== shape.type) return false;
  for (let k = 0; k < length; k++) if (bytes[at + k] !== patternByte(k, i)) return false;
  return true;
}
