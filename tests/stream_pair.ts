// The two ends of a cross-process stream test: this process runs one side on a fifo while a
// fifo_peer.ts process of another runtime runs the other; the figures of both are returned.
import { expectSuccess, running, type Runtime, startPeer, streamTable } from "./helpers.ts";

/** What the two sides reported: the producer's and the consumer's figures (see peers/stream.ts). */
export interface StreamFigures {
  // deno-lint-ignore no-explicit-any
  produced: any;
  // deno-lint-ignore no-explicit-any
  consumed: any;
}

/**
 * Starts `fifo_peer.ts` under `other` with `peerArgs`, runs `mine(table, alive)` here (this side
 * produces when `iProduce`; it may be async), waits for the peer, and returns both sides' figures. The peer is
 * killed if this side throws.
 */
export async function streamWithPeer(
  other: Runtime,
  peerArgs: string[],
  iProduce: boolean,
  mine: (table: Uint8Array, alive: () => boolean) => unknown,
): Promise<StreamFigures> {
  const peer = startPeer(other, "fifo_peer", peerArgs, 300_000);
  try {
    const here = await mine(streamTable(), () => running(peer.pid));
    const result = await peer.done;
    expectSuccess(result, `${other} peer`);
    const theirs = JSON.parse(result.stdout.split("DONE ")[1]);
    return iProduce ? { produced: here, consumed: theirs } : { produced: theirs, consumed: here };
  } finally {
    peer.kill();
    await peer.done;
  }
}
