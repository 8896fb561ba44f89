// Both sides of the cross-process message ring test, used by the test process and by ring_peer.ts.
import type { MessageRing } from "../../mod.ts";
import { xorshift } from "../helpers.ts";
import { checkRecord, fillRecord, recordShape } from "./ring_records.ts";

/** Sends `count` records: claims and offers mixed, some claims aborted, publishing now and then; then closes. */
export async function produce(ring: MessageRing, count: number, seed: number) {
  const rand = xorshift(seed);
  const scratch = new Uint8Array(ring.maxMessage);
  let aborted = 0;
  for (let i = 0; i < count;) {
    const { length, type } = recordShape(i, ring.maxMessage);
    const how = rand();
    if (how < 0.05) {
      // A claim given up: the consumer must never see it.
      if (ring.tryClaim(length, 99) >= 0) {
        ring.abort();
        aborted++;
      } else await ring.waitForSpace(length);
      continue;
    }
    if (how < 0.5) {
      const at = ring.tryClaim(length, type);
      if (at < 0) {
        await ring.waitForSpace(length);
        continue;
      }
      fillRecord(ring.bytes, at, length, i);
      ring.commit();
    } else {
      fillRecord(scratch, 0, length, i);
      if (!ring.offer(scratch.subarray(0, length), type)) {
        await ring.waitForSpace(length);
        continue;
      }
    }
    i++;
    if (how > 0.98) ring.publish();
  }
  ring.close();
  return { sent: count, aborted };
}

/** Polls in batches until the ring is closed and drained, sleeping when empty; checks every record. */
export async function consume(ring: MessageRing) {
  let got = 0;
  let bad = 0;
  let batches = 0;
  const check = (bytes: Uint8Array, at: number, length: number, type: number) => {
    if (!checkRecord(bytes, at, length, type, got, ring.maxMessage)) bad++;
    got++;
  };
  for (;;) {
    if (ring.poll(check, 1000) > 0) {
      batches++;
      continue;
    }
    if (ring.isClosed && ring.isEmpty) break;
    await ring.waitForData({ timeoutMs: 20_000 });
  }
  return { got, bad, batches };
}
