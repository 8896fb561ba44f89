// A hostile peer for the fuzz test: attaches a segment and, for MS milliseconds, overwrites
// random words of the allocator's header and of the fifo headers it is given with values drawn
// from SEED: random ones and plausible ones (offsets of fifos, of their data, chunk lengths,
// small numbers). Never the canary, never any data, never the process table.
//   NAME SEED MS CANARY OFFSET...
import { SegmentMain } from "../../mod.ts";
import { chunkBytes, FIFO_HEADER_SIZE, FS_BUMP } from "../../src/layout.ts";
import { xorshift } from "../helpers.ts";

const [name, seedText, msText, canaryText, ...offsetTexts] = process.argv.slice(2);
const sm = new SegmentMain({ timeoutSeconds: 10 });
const segment = sm.attach({ type: "shm", name });
const u32 = segment.u32;
const rand = xorshift(Number(seedText));
const canary = Number(canaryText);
const fifos = offsetTexts.map(Number);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const bump = Atomics.load(u32, FS_BUMP >>> 2);
const plausible = [
  0,
  1,
  2,
  3,
  0xffff_ffff,
  canary,
  canary + FIFO_HEADER_SIZE,
  bump,
  bump - chunkBytes(0),
  bump + chunkBytes(0),
  chunkBytes(0),
  chunkBytes(1),
  4096,
  ...fifos,
  ...fifos.map((f) => f + FIFO_HEADER_SIZE + 64),
];
// Word indices to hit: the allocator's header (bump .. freelist heads), every fifo header line.
const targets: number[] = [];
for (let byte = 512; byte < 576 + 20 * 4; byte += 4) targets.push(byte >>> 2);
for (const f of fifos) for (let byte = 0; byte < FIFO_HEADER_SIZE; byte += 4) targets.push((f + byte) >>> 2);
console.log("SCRIBBLING");
const end = performance.now() + Number(msText);
let writes = 0;
while (performance.now() < end) {
  for (let i = 0; i < 64; i++) {
    const word = pick(targets);
    const value = rand() < 0.5 ? pick(plausible) : Math.floor(rand() * 2 ** 32);
    const saved = Atomics.load(u32, word);
    Atomics.store(u32, word, value);
    writes++;
    // Restore most words soon, so that the victim also runs on a mostly sane segment.
    if (rand() < 0.8) Atomics.store(u32, word, saved);
  }
}
console.log(`DONE ${writes}`);
