// The fifo sides of the cross-process benchmark. Each function runs in its own process and
// returns its figures; every run checks sequence stamps and throws on a mismatch.
import { type Fifo, type MessageRing, waitAny, WaitSet } from "../mod.ts";

/** Consumer-side read size for the stream cases: as large as the fifo allows. */
export const STREAM_READ = 64 * 1024;

/** Stream: `count` writes of `size` bytes, each stamped with its index in the first 4 bytes. */
export function streamProduce(fifo: Fifo, size: number, count: number): { seconds: number } {
  const buf = new Uint8Array(size).fill(0xab);
  const view = new DataView(buf.buffer);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (size >= 4) view.setUint32(0, i, true);
    let off = fifo.enqueue(buf); // enqueue writes what fits: finish the rest as room appears
    while (off < size) off += fifo.enqueue(buf.subarray(off));
  }
  return { seconds: (performance.now() - start) / 1000 };
}

/** {@link streamProduce} that sleeps in `waitForSpace` when the fifo is full, as an event-driven program would. */
export async function streamProduceSleeping(fifo: Fifo, size: number, count: number): Promise<{ seconds: number }> {
  const buf = new Uint8Array(size).fill(0xab);
  const view = new DataView(buf.buffer);
  const quarter = Math.max(1, fifo.size >> 2);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (size >= 4) view.setUint32(0, i, true);
    let off = fifo.enqueue(buf);
    while (off < size) {
      await fifo.waitForSpace(Math.min(size - off, quarter));
      off += fifo.enqueue(buf.subarray(off));
    }
  }
  return { seconds: (performance.now() - start) / 1000 };
}

/** {@link streamConsume} that sleeps in `waitForData` when the fifo is empty. */
export async function streamConsumeSleeping(fifo: Fifo, size: number, count: number, readSize: number) {
  const buf = new Uint8Array(readSize);
  const view = new DataView(buf.buffer);
  const total = size * count;
  let got = 0;
  let t0 = 0;
  let checked = 0;
  while (got < total) {
    const n = fifo.dequeue(buf);
    if (n === 0) {
      await fifo.waitForData();
      continue;
    }
    if (t0 === 0) t0 = performance.now();
    checked += checkStamps(view, n, got, size);
    got += n;
  }
  return { seconds: (performance.now() - t0) / 1000, bytes: got, checked };
}

/**
 * Checks the stamp at the start of every write of `size` bytes that begins inside a read of `n`
 * bytes at stream position `got`; returns how many it checked.
 */
function checkStamps(view: DataView, n: number, got: number, size: number): number {
  let checked = 0;
  for (let at = (size - (got % size)) % size; at + 4 <= n; at += size) {
    const index = (got + at) / size;
    if (view.getUint32(at, true) !== index) {
      throw new Error(`stamp mismatch at write ${index}: ${view.getUint32(at, true)}`);
    }
    checked++;
  }
  return checked;
}

/**
 * Reads `size * count` bytes, up to `readSize` per dequeue, and checks the stamp at the start of
 * every write that begins inside a read. Times from the first read that starts at or past
 * `warmBytes` to the last byte (`bytes`: what that span moved; `total`: all of it): the runtimes
 * compile the hot code on the same two CPUs the two sides poll on, which slows the first few
 * hundred milliseconds of a stream; 0 times from the first byte, like the C ring.
 */
export function streamConsume(fifo: Fifo, size: number, count: number, readSize: number, warmBytes = 0) {
  const buf = new Uint8Array(readSize);
  const view = new DataView(buf.buffer);
  const total = size * count;
  let got = 0;
  let t0 = 0;
  let from = 0;
  let checked = 0;
  while (got < total) {
    const n = fifo.dequeue(buf);
    if (n === 0) continue;
    if (t0 === 0 && got >= warmBytes) {
      t0 = performance.now();
      from = got;
    }
    checked += checkStamps(view, n, got, size);
    got += n;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, bytes: got - from, total: got, checked };
}

/** Framed messages: a 4-byte length and `payload` bytes, padded to 8; stamp after the length. */
export function messageBytes(payload: number): number {
  return (4 + payload + 7) & ~7;
}

export function messagesProduce(fifo: Fifo, payload: number, count: number): { seconds: number } {
  const rec = new Uint8Array(messageBytes(payload));
  const view = new DataView(rec.buffer);
  view.setUint32(0, payload, true);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    view.setUint32(4, i, true);
    while (!fifo.enqueueExact(rec)) { /* full: a message is never split */ }
  }
  return { seconds: (performance.now() - start) / 1000 };
}

/** Reads one message at a time: waits for a whole record, then takes it. */
export function messagesConsume(fifo: Fifo, payload: number, count: number) {
  const rec = new Uint8Array(messageBytes(payload));
  const view = new DataView(rec.buffer);
  let t0 = 0;
  for (let i = 0; i < count; i++) {
    while (!fifo.dequeueExact(rec)) { /* wait for a whole message */ }
    if (t0 === 0) t0 = performance.now();
    if (view.getUint32(0, true) !== payload || view.getUint32(4, true) !== i) {
      throw new Error(`message ${i}: length ${view.getUint32(0, true)}, stamp ${view.getUint32(4, true)}`);
    }
  }
  return { seconds: (performance.now() - t0) / 1000, messages: count };
}

/**
 * Round trips before a polling round trip's clock starts: the JavaScript rows are measured at
 * steady state, after the engines' JIT tiers have settled (C needs no warming; its programs warm
 * up with 1000). With 1000 here, the mean of 200,000 ring round trips carried the tier-up: Deno
 * 952 ns against 838 after 20,000, Bun 1238 against 1044 (interleaved runs, C at 559). 20,000
 * was still short of Bun's last tier: 1145-1338 ns against 848-900 after 200,000, five rounds
 * out of five (C 621-704); Deno 778-1004 against 736-805.
 */
export const WARMUP_ROUNDS = 200_000;

/** Round trips of a 64-byte message: out through `out`, back through `back`. */
export function pingpong(out: Fifo, back: Fifo, rounds: number) {
  const msg = new Uint8Array(64);
  const reply = new Uint8Array(64);
  const view = new DataView(msg.buffer);
  const replyView = new DataView(reply.buffer);
  const samples = new Float64Array(Math.floor(rounds / 10));
  const once = (i: number) => {
    view.setUint32(0, i, true);
    while (out.enqueue(msg) === 0) { /* full */ }
    let have = 0;
    while (have < 64) have += back.dequeue(have === 0 ? reply : reply.subarray(have));
    if (replyView.getUint32(0, true) !== i) {
      throw new Error(`round trip ${i} came back as ${replyView.getUint32(0, true)}`);
    }
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) once(i);
  const start = performance.now();
  for (let i = 0; i < rounds; i++) once(i);
  const meanNs = ((performance.now() - start) * 1e6) / rounds;
  for (let i = 0; i < samples.length; i++) {
    const t = performance.now();
    once(i);
    samples[i] = (performance.now() - t) * 1e6;
  }
  samples.sort();
  return {
    meanNs,
    p50Ns: samples[samples.length >> 1],
    p99Ns: samples[Math.floor(samples.length * 0.99)],
  };
}

/** The echo side of the round trip. */
export function echo(inbound: Fifo, outbound: Fifo, rounds: number): void {
  const msg = new Uint8Array(64);
  for (let i = 0; i < rounds; i++) {
    let have = 0;
    while (have < 64) have += inbound.dequeue(have === 0 ? msg : msg.subarray(have));
    while (outbound.enqueue(msg) === 0) { /* full */ }
  }
}

/** Round trips where both sides sleep in waitForData instead of polling (the wake-up latency). */
export async function pingpongSleeping(out: Fifo, back: Fifo, rounds: number) {
  const msg = new Uint8Array(64);
  const reply = new Uint8Array(64);
  const view = new DataView(msg.buffer);
  const replyView = new DataView(reply.buffer);
  const samples = new Float64Array(rounds);
  for (let i = -100; i < rounds; i++) {
    const t = performance.now();
    view.setUint32(0, i >>> 0, true);
    while (!out.enqueueExact(msg)) await out.waitForSpace(64);
    while (!back.dequeueExact(reply)) await back.waitForData();
    if (replyView.getUint32(0, true) !== i >>> 0) throw new Error(`round trip ${i} came back wrong`);
    if (i >= 0) samples[i] = (performance.now() - t) * 1e6;
  }
  const meanNs = samples.reduce((a, b) => a + b, 0) / rounds;
  samples.sort();
  return { meanNs, p50Ns: samples[rounds >> 1], p99Ns: samples[Math.floor(rounds * 0.99)] };
}

/** The echo side, asleep between messages. */
export async function echoSleeping(inbound: Fifo, outbound: Fifo, rounds: number): Promise<void> {
  const msg = new Uint8Array(64);
  for (let i = 0; i < rounds + 100; i++) {
    while (!inbound.dequeueExact(msg)) await inbound.waitForData();
    while (!outbound.enqueueExact(msg)) await outbound.waitForSpace(64);
  }
}

/** Rounds a server and its clients exchange before the measured ones (also over sockets). */
export const SERVER_WARMUP = 100;

/**
 * A server's loop over its clients' request fifos `rx`, asleep between requests: in a
 * {@link WaitSet} (`how` "set") or through {@link waitAny} over all of them (`how` "any"). Each
 * 64 B request is echoed to the reply fifo `tx` of the same client.
 */
export async function serveSleeping(rx: Fifo[], tx: Fifo[], rounds: number, how: "set" | "any"): Promise<void> {
  const msg = new Uint8Array(64);
  const index = new Map(rx.map((f, i) => [f, i]));
  using set = new WaitSet(how === "set" ? rx : []);
  for (let served = 0; served < rounds + SERVER_WARMUP;) {
    const ready = how === "set" ? await set.wait() : await waitAny(rx);
    for (const fifo of ready) {
      const out = tx[index.get(fifo)!];
      while (fifo.dequeueExact(msg)) {
        while (!out.enqueueExact(msg)) await out.waitForSpace(64);
        served++;
      }
    }
  }
}

/** The clients' random order, the same in every run and for the socket's anchor: the next client's index. */
export function clientPicker(count: number): () => number {
  let seed = 0x9e3779b9;
  return () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % count;
  };
}

/**
 * The clients of {@link serveSleeping}, in one process: each round, a random client sends 64 B
 * and sleeps in `waitForData` until its reply; round trips timed.
 */
export async function clientsSleeping(rx: Fifo[], tx: Fifo[], rounds: number) {
  const msg = new Uint8Array(64);
  const reply = new Uint8Array(64);
  const view = new DataView(msg.buffer);
  const replyView = new DataView(reply.buffer);
  const samples = new Float64Array(rounds);
  const pick = clientPicker(rx.length);
  for (let i = -SERVER_WARMUP; i < rounds; i++) {
    const c = pick();
    const t = performance.now();
    view.setUint32(0, i >>> 0, true);
    while (!rx[c].enqueueExact(msg)) await rx[c].waitForSpace(64);
    while (!tx[c].dequeueExact(reply)) await tx[c].waitForData();
    if (replyView.getUint32(0, true) !== i >>> 0) throw new Error(`round trip ${i} came back wrong`);
    if (i >= 0) samples[i] = (performance.now() - t) * 1e6;
  }
  const meanNs = samples.reduce((a, b) => a + b, 0) / rounds;
  samples.sort();
  return { meanNs, p50Ns: samples[rounds >> 1], p99Ns: samples[Math.floor(rounds * 0.99)] };
}

/**
 * CPU time per second this process spends while a reader waits `ms` on an empty fifo, after a
 * first wait of `firstMs`: a process's first wait opens its doorbell, and a runtime's first second
 * costs a few milliseconds of its own (compiling, collecting) even around a plain timer; neither
 * is idling. The window's first second still carries some of that (the wait path and its liveness
 * ticks run their first times: in Bun about 5 ms in the second second, 2 to 3 in the next ones).
 */
export async function idleCpu(fifo: Fifo, firstMs: number, ms: number) {
  await fifo.waitForData({ timeoutMs: firstMs });
  const before = process.cpuUsage();
  const start = performance.now();
  await fifo.waitForData({ timeoutMs: ms });
  const cpu = process.cpuUsage(before);
  const wallMs = performance.now() - start;
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 / (wallMs / 1000) };
}

/** Message ring: `count` records of `payload` bytes offered (published in batches), stamped with their index. */
export function ringProduce(ring: MessageRing, payload: number, count: number): { seconds: number } {
  const rec = new Uint8Array(payload);
  const view = new DataView(rec.buffer);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    view.setUint32(0, i, true);
    while (!ring.offer(rec)) { /* full: the failed offer published; the consumer frees room */ }
    if ((i & 63) === 63) ring.publish(); // a batch: one store for 64 records
  }
  ring.publish();
  return { seconds: (performance.now() - start) / 1000 };
}

/** Polls `count` records, checking each one's stamp, in place. */
export function ringConsume(ring: MessageRing, payload: number, count: number) {
  let got = 0;
  let t0 = 0;
  let bad = 0;
  const handler = (bytes: Uint8Array, at: number, length: number) => {
    const stamp = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
    if (length !== payload || stamp !== got) bad++;
    got++;
  };
  while (got < count) {
    if (ring.poll(handler, 256) > 0 && t0 === 0) t0 = performance.now(); // release as it goes
  }
  if (bad > 0) throw new Error(`${bad} records came wrong`);
  return { seconds: (performance.now() - t0) / 1000, messages: got };
}

/** Polling round trips of 64 B records through two rings, each record published at once. */
export function ringPingpong(out: MessageRing, back: MessageRing, rounds: number) {
  const msg = new Uint8Array(64);
  let seen = -1;
  const handler = (bytes: Uint8Array, at: number) => (seen = bytes[at] | (bytes[at + 1] << 8));
  const once = (i: number) => {
    msg[0] = i & 0xff;
    msg[1] = (i >> 8) & 0xff;
    while (!out.offer(msg)) { /* full */ }
    out.publish();
    while (back.poll(handler, 1) === 0) { /* polling */ }
    if (seen !== (i & 0xffff)) throw new Error(`round trip ${i} came back wrong`);
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) once(i);
  const start = performance.now();
  for (let i = 0; i < rounds; i++) once(i);
  return { meanNs: ((performance.now() - start) * 1e6) / rounds };
}

/**
 * The floor of any JavaScript ring, beside the C anchor: pingpong.c's "ring" exchange (per
 * direction a producer position and a consumer position, each on its own cache line, one 64 B
 * slot per message, the other side's position cached) written in plain JavaScript over the
 * segment's memory. Every position is published with `Atomics.store`, JavaScript's only release
 * (an `xchg`, a full fence, on x86, where C's release is a plain move): what the language costs,
 * before any library. `bytes` is the segment; `at` a 64-aligned area of FLOOR_BYTES nothing else
 * uses.
 */
export const FLOOR_BYTES = 256 + 2 * 65536;
const FLOOR_SLOTS = 65536;

function floorSide(bytes: Uint8Array, at: number, ping: boolean) {
  const i32 = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const w = at >>> 2;
  // Direction A (ping to echo) and B (echo to ping): [producer position, consumer position].
  const [outHead, outTail, inHead, inTail] = ping ? [w, w + 16, w + 32, w + 48] : [w + 32, w + 48, w, w + 16];
  const outData = at + 256 + (ping ? 0 : FLOOR_SLOTS);
  const inData = at + 256 + (ping ? FLOOR_SLOTS : 0);
  let head = 0; // what this side produced
  let tailSeen = 0; // the consumer's position as last seen
  let tail = 0; // what this side consumed
  let headSeen = 0; // the producer's position as last seen
  /** Where the next outgoing message goes, once the consumer left room for it. */
  const slotOut = () => {
    while (head - tailSeen + 64 > FLOOR_SLOTS) tailSeen = Atomics.load(i32, outTail);
    return outData + (head & (FLOOR_SLOTS - 1));
  };
  const publish = () => {
    head = (head + 64) | 0;
    Atomics.store(i32, outHead, head);
  };
  return {
    send(msg: Uint8Array) {
      bytes.set(msg, slotOut());
      publish();
    },
    /** Spins for the next message; returns where it is in `bytes`, consumed (its slot is free once `done`). */
    receive(): number {
      while (headSeen === tail) headSeen = Atomics.load(i32, inHead);
      return inData + (tail & (FLOOR_SLOTS - 1));
    },
    done() {
      tail = (tail + 64) | 0;
      Atomics.store(i32, inTail, tail);
    },
    forward() {
      // The echo: the message straight from its slot to a slot of the other direction.
      const from = this.receive();
      bytes.copyWithin(slotOut(), from, from + 64);
      this.done();
      publish();
    },
  };
}

/** The ping side of the floor exchange: mean round trip of `rounds`, after WARMUP_ROUNDS to warm up. */
export function floorPing(bytes: Uint8Array, at: number, rounds: number) {
  const side = floorSide(bytes, at, true);
  const msg = new Uint8Array(64);
  const once = (i: number) => {
    msg[0] = i & 0xff;
    side.send(msg);
    const got = bytes[side.receive()];
    side.done();
    if (got !== (i & 0xff)) throw new Error(`floor round trip ${i} came back wrong`);
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) once(i);
  const start = performance.now();
  for (let i = 0; i < rounds; i++) once(i);
  return { meanNs: ((performance.now() - start) * 1e6) / rounds };
}

/** The echo side of the floor exchange. */
export function floorEcho(bytes: Uint8Array, at: number, rounds: number): void {
  const side = floorSide(bytes, at, false);
  for (let i = 0; i < rounds + WARMUP_ROUNDS; i++) side.forward();
}

/**
 * The echo side of the ring round trip. Each echo is published from inside the handler, as the
 * ping side publishes each record at once: publishing after `poll` returned put the rest of the
 * poll (the look at the next record's size word, its bookkeeping) on the round trip's path, 10%
 * of Deno's round trip in a probe (seven interleaved rounds, C 521-661 ns: 822-922 ns against
 * 745-796; Bun within its spread either way).
 */
export function ringEcho(inbound: MessageRing, outbound: MessageRing, rounds: number): void {
  let left = rounds + WARMUP_ROUNDS;
  const handler = (bytes: Uint8Array, at: number, length: number) => {
    // Claim in place and copy record to record (both rings live in one segment: `bytes`).
    let to = outbound.tryClaim(length);
    while (to < 0) to = outbound.tryClaim(length);
    bytes.copyWithin(to, at, at + length);
    outbound.commit();
    outbound.publish();
    left--;
  };
  while (left > 0) inbound.poll(handler);
}
