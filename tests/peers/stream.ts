// Both ends of the cross-process fifo tests, used by the test process and by fifo_peer.ts.
import type { Fifo, Segment } from "../../mod.ts";
import { STREAM_MAX_IO, STREAM_PERIOD, xorshift } from "../helpers.ts";

/** A small deterministic generator of write and read sizes. */
export function sizes(seed: number): () => number {
  const rand = xorshift(seed);
  return () => {
    const r = Math.floor(rand() * 2 ** 32);
    const kind = r & 3; // a quarter tiny, a quarter small, half up to the maximum
    if (kind === 0) return 1 + (r >>> 8) % 16;
    if (kind === 1) return 1 + (r >>> 8) % 1500;
    return 1 + (r >>> 8) % STREAM_MAX_IO;
  };
}

/** Gives up when the peer is gone or nothing moved for `stallMs`. */
function stallGuard(alive: () => boolean, what: string, stallMs = 30_000): (moved: boolean) => void {
  let spins = 0;
  let last = performance.now();
  return (moved) => {
    if (moved) {
      spins = 0;
      return;
    }
    if (++spins % 65536 !== 0) return;
    if (spins === 65536) last = performance.now();
    if (!alive()) throw new Error(`${what}: the peer process is gone`);
    if (performance.now() - last > stallMs) throw new Error(`${what}: no progress for ${stallMs} ms`);
  };
}

/**
 * Streams `total` bytes of the pattern into `fifo`, with varied write sizes. With `outOfOrder`,
 * every other write goes in two parts, the second first (`enqueueWithOffset`) and then the first,
 * which joins them.
 */
export function produceStream(
  fifo: Fifo,
  total: number,
  seed: number,
  table: Uint8Array,
  alive: () => boolean,
  outOfOrder = false,
) {
  const next = sizes(seed);
  const guard = stallGuard(alive, "producer");
  let sent = 0;
  let writes = 0;
  let ooo = 0;
  let size = next();
  while (sent < total) {
    const n = Math.min(size, total - sent);
    const at = sent % STREAM_PERIOD;
    const half = n >> 1;
    if (
      outOfOrder && (writes & 1) === 1 && half > 0 && fifo.enqueueWithOffset(half, table.subarray(at + half, at + n))
    ) {
      ooo++;
      let done = 0; // the first part; the enqueue that completes it returns the second part too
      while (done < n) {
        const wrote = fifo.enqueue(table.subarray(at + done, at + half));
        guard(wrote > 0);
        done += wrote;
      }
      sent += n;
      writes++;
      size = next();
      continue;
    }
    const wrote = fifo.enqueue(table.subarray(at, at + n));
    guard(wrote > 0);
    if (wrote > 0) {
      sent += wrote;
      writes++;
      size = next();
    }
  }
  return { bytes: sent, writes, ooo };
}

/** Reads `total` bytes from `fifo` with varied read sizes and checks every one. */
export function consumeStream(fifo: Fifo, total: number, seed: number, table: Uint8Array, alive: () => boolean) {
  const next = sizes(seed ^ 0x9e3779b9);
  const guard = stallGuard(alive, "consumer");
  const buf = new Uint8Array(STREAM_MAX_IO);
  let received = 0;
  let bad = 0;
  let firstBad = -1;
  let reads = 0;
  let size = next();
  while (received < total) {
    const n = fifo.dequeue(size === buf.length ? buf : buf.subarray(0, Math.min(size, total - received)));
    guard(n > 0);
    if (n === 0) continue;
    const base = received % STREAM_PERIOD;
    for (let i = 0; i < n; i++) {
      if (buf[i] !== table[base + i]) {
        if (firstBad < 0) firstBad = received + i;
        bad++;
      }
    }
    received += n;
    reads++;
    size = next();
  }
  return { bytes: received, bad, firstBad, reads, left: fifo.maxDequeue };
}

/** Bytes in one event-test message: a u32 sequence number and its complement, twice. */
export const EVENT_MESSAGE = 16;

/**
 * The producer of the event test: messages into `data` in bursts with idle gaps; after each
 * enqueue, `setEvent()` tells whether a notification (one byte in `events`) must be sent.
 */
export function produceEvents(
  data: Fifo,
  events: Fifo,
  messages: number,
  sleepMicroseconds: (us: number) => void,
  alive: () => boolean,
) {
  const next = sizes(77);
  const guard = stallGuard(alive, "event producer");
  const msg = new Uint8Array(EVENT_MESSAGE);
  const view = new DataView(msg.buffer);
  const one = new Uint8Array(1);
  let notifications = 0;
  let sent = 0;
  while (sent < messages) {
    const burst = Math.min(messages - sent, 1 + next() % 64);
    for (let i = 0; i < burst; i++, sent++) {
      view.setUint32(0, sent, true);
      view.setUint32(4, ~sent >>> 0, true);
      view.setUint32(8, sent, true);
      view.setUint32(12, ~sent >>> 0, true);
      for (let off = 0; off < msg.length;) {
        const wrote = data.enqueue(off === 0 ? msg : msg.subarray(off)); // whatever fits
        guard(wrote > 0);
        off += wrote;
      }
      if (data.setEvent()) {
        notifications++;
        while (events.enqueue(one) === 0) guard(false);
      }
    }
    const gap = next() % 8;
    if (gap === 0) sleepMicroseconds(next() % 300); // idle: the consumer goes to sleep
  }
  return { sent, notifications };
}

/**
 * The consumer of the event test: sleeps until a notification, then clears the event flag and
 * only then drains (the re-check after unset). A wait that outlasts `lostAfterMs` while data is
 * waiting is a lost wake-up.
 */
export function consumeEvents(
  segment: Segment,
  data: Fifo,
  messages: number,
  sleepMicroseconds: (us: number) => void,
  alive: () => boolean,
  order: "unset-then-drain" | "drain-then-unset" = "unset-then-drain",
) {
  // Both orders pause 50 us between the flag and the drain, which widens any race window so
  // that the wrong order (the reference's 2018 VCL bug) loses a wake-up quickly: the control.
  const pause = () => sleepMicroseconds(50);
  const events = segment.fifos().find((f) => f.tag === 0xe7e7)!;
  const msg = new Uint8Array(EVENT_MESSAGE);
  const view = new DataView(msg.buffer);
  const one = new Uint8Array(1);
  const lostAfterMs = order === "unset-then-drain" ? 500 : 100;
  let received = 0;
  let wakeups = 0;
  let lost = 0;
  let bad = 0;
  let partial = 0;
  while (received < messages) {
    const since = performance.now();
    while (events.dequeue(one) === 0) {
      if (performance.now() - since > lostAfterMs) {
        if (data.maxDequeue > 0) {
          lost++; // data is waiting and nobody told us: a lost wake-up
          break;
        }
        if (!alive()) throw new Error("event consumer: the producer is gone");
      }
      sleepMicroseconds(20);
    }
    if (lost > 0 && order === "drain-then-unset") break; // the control has shown its loss
    wakeups++;
    if (order === "unset-then-drain") {
      data.unsetEvent();
      pause();
    }
    for (;;) {
      const n = data.dequeue(msg.subarray(partial));
      if (n === 0) {
        if (order === "drain-then-unset") {
          pause();
          data.unsetEvent();
        }
        break;
      }
      partial += n;
      if (partial < EVENT_MESSAGE) continue;
      partial = 0;
      const seq = view.getUint32(0, true);
      if (seq !== received || view.getUint32(4, true) !== (~seq >>> 0) || view.getUint32(8, true) !== seq) bad++;
      received++;
    }
  }
  return { received, wakeups, lost, bad };
}
