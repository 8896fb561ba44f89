/**
 * A process's event ring: many wakers push the offsets of chunks that became ready, the one
 * sleeping process drains them. Layout: "Event ring" in `layout.ts`. Events are hints (the
 * sleeper re-checks what they name), so a malformed ring costs a full re-check, never a crash:
 * every word is read once and checked where it is used.
 *
 * @module
 */

import {
  EV_HEAD,
  EV_MAGIC,
  EV_OWNER,
  EV_RING,
  EV_SLOT_SIZE,
  EV_SLOTS,
  EV_TAIL,
  EVENT_SLOTS,
  EVENTS_BYTES,
  EVENTS_MAGIC,
  FIFO_HEADER_SIZE,
} from "../layout.ts";

const MASK = EVENT_SLOTS - 1;

/** Formats the ring of a freshly allocated chunk at `chunk` for its owner `tag`. */
export function formatEventRing(u32: Uint32Array, chunk: number, tag: number): void {
  const d = (chunk + FIFO_HEADER_SIZE) >>> 2;
  for (let i = 0; i < EVENT_SLOTS; i++) {
    Atomics.store(u32, d + (EV_RING + i * EV_SLOT_SIZE) / 4, 0);
  }
  Atomics.store(u32, d + EV_TAIL / 4, 0);
  Atomics.store(u32, d + EV_HEAD / 4, 0);
  Atomics.store(u32, d + EV_SLOTS / 4, EVENT_SLOTS);
  Atomics.store(u32, d + EV_OWNER / 4, tag);
  Atomics.store(u32, d + EV_MAGIC / 4, EVENTS_MAGIC);
}

/** The u32 index of the ring's data at `chunk`, or -1 when `chunk` holds no ring of `tag`. */
export function ringAt(u32: Uint32Array, chunk: number, tag: number): number {
  if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % 64 !== 0) return -1;
  if (chunk + FIFO_HEADER_SIZE + EVENTS_BYTES > u32.length * 4) return -1;
  const d = (chunk + FIFO_HEADER_SIZE) >>> 2;
  if (Atomics.load(u32, d + EV_MAGIC / 4) !== EVENTS_MAGIC) return -1;
  if (Atomics.load(u32, d + EV_OWNER / 4) !== tag) return -1;
  if (Atomics.load(u32, d + EV_SLOTS / 4) !== EVENT_SLOTS) return -1;
  return d;
}

/**
 * Pushes `offset` onto the ring at u32 index `d` (from {@link ringAt}); false when it is full
 * (the waker then asks for a full re-check instead).
 */
export function pushEvent(u32: Uint32Array, d: number, offset: number): boolean {
  const tailWord = d + EV_TAIL / 4;
  for (;;) {
    const tail = Atomics.load(u32, tailWord);
    const head = Atomics.load(u32, d + EV_HEAD / 4);
    if (((tail - head) >>> 0) >= EVENT_SLOTS) return false;
    if (Atomics.compareExchange(u32, tailWord, tail, (tail + 1) >>> 0) !== tail) continue;
    const slot = d + (EV_RING + (tail & MASK) * EV_SLOT_SIZE) / 4;
    Atomics.store(u32, slot + 1, offset);
    Atomics.store(u32, slot, (tail + 1) >>> 0); // written: readable from here on
    return true;
  }
}

/**
 * Drains the ring at `d`, calling `visit` with each offset. Stops at a slot claimed but not
 * written yet, unless `skipStuck` (a liveness tick: a waker that died between its claim and its
 * write must not stop the ring for good). Returns false when the ring was inconsistent or a slot
 * was skipped: the caller must re-check every wait.
 */
export function drainEvents(u32: Uint32Array, d: number, visit: (offset: number) => void, skipStuck: boolean): boolean {
  const headWord = d + EV_HEAD / 4;
  let head = Atomics.load(u32, headWord);
  const tail = Atomics.load(u32, d + EV_TAIL / 4);
  if (((tail - head) >>> 0) > EVENT_SLOTS) {
    Atomics.store(u32, headWord, tail); // a peer scribbled on it: start over from the tail
    return false;
  }
  let whole = true;
  while (head !== tail) {
    const slot = d + (EV_RING + (head & MASK) * EV_SLOT_SIZE) / 4;
    if (Atomics.load(u32, slot) === ((head + 1) >>> 0)) {
      visit(Atomics.load(u32, slot + 1));
    } else if (skipStuck) {
      whole = false;
    } else {
      break;
    }
    head = (head + 1) >>> 0;
    Atomics.store(u32, headWord, head);
  }
  return whole;
}
