// A peer process for the cross-process segment tests; runs under Deno or Bun.
//   create TYPE NAME          create a segment, write a greeting and a pattern into a fifo,
//                             print READY {...}, wait for the reader's "ok", delete, exit
//   attach TYPE NAME          attach (shm by name; memfd as "PID:FD"), read and check,
//                             answer "ok", print SAW {...}
//   slow-create NAME MS       shm_open + ftruncate, print OPENED, wait MS, then format and set ready
import { SegmentMain } from "../../mod.ts";
import { formatHeader, setReady } from "../../src/segment/segment_header.ts";
import { PROC_LOCK_BASE } from "../../src/layout.ts";
import { SEG_READY } from "../../src/layout.ts";
import { pattern, patternByte } from "../helpers.ts";

const PATTERN_BYTES = 32 * 1024;
const GREETING_TAG = 0xc0ffee;
const ACK_TAG = 2;
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const [mode, type, name, extra] = process.argv.slice(2) as [string, "shm" | "memfd", string, string];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function create(): Promise<void> {
  using sm = new SegmentMain();
  const seg = sm.create({ type, name, size: 1 << 20 });
  const fifo = seg.allocFifo(64 * 1024, "tx")!;
  fifo.tag = GREETING_TAG;
  const greeting = new TextEncoder().encode(`hello from ${runtime} ${process.pid}`);
  const header = new Uint8Array([greeting.length]);
  fifo.enqueue(header);
  fifo.enqueue(greeting);
  fifo.enqueue(pattern(new Uint8Array(PATTERN_BYTES), 0, 7));
  const ack = seg.allocFifo(16, "rx")!;
  ack.tag = ACK_TAG;
  seg.allocMessageRing(1024)!.offer(new Uint8Array(8)); // for `cli.ts show`
  console.log(`READY ${JSON.stringify({ pid: process.pid, fd: seg.info().fd ?? -1, runtime })}`);
  const deadline = Date.now() + 60_000;
  while (ack.maxDequeue < 2) {
    if (Date.now() > deadline) throw new Error("no ack from the reader");
    await sleep(2);
  }
  const got = new Uint8Array(2);
  ack.dequeue(got);
  if (new TextDecoder().decode(got) !== "ok") throw new Error("bad ack");
}

function attach(): void {
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  const seg = type === "shm"
    ? sm.attach({ type: "shm", name })
    : sm.attach({ type: "memfd", pid: Number(name.split(":")[0]), fd: Number(name.split(":")[1]) });
  const fifos = seg.fifos();
  const fifo = fifos.find((f) => f.tag === GREETING_TAG)!;
  const ack = fifos.find((f) => f.tag === ACK_TAG)!;
  const len = new Uint8Array(1);
  fifo.dequeue(len);
  const greeting = new Uint8Array(len[0]);
  fifo.dequeue(greeting);
  const data = new Uint8Array(PATTERN_BYTES);
  const n = fifo.dequeue(data);
  let bad = 0;
  for (let i = 0; i < n; i++) if (data[i] !== patternByte(i, 7)) bad++;
  ack.enqueue(new TextEncoder().encode("ok"));
  console.log(`SAW ${
    JSON.stringify({
      greeting: new TextDecoder().decode(greeting),
      bytes: n,
      bad,
      left: fifo.maxDequeue,
      creatorPid: seg.creatorPid,
      type: seg.type,
      runtime,
    })
  }`);
}

async function slowCreate(): Promise<void> {
  const sm = new SegmentMain();
  const os = sm.os;
  const fd = os.shmOpen(`/${type}`, 0o302, 0o600); // here `type` holds the name
  os.lockByte(fd, PROC_LOCK_BASE); // the creator's slot, as SegmentMain.create takes it
  os.ftruncate(fd, 1 << 16);
  console.log("OPENED");
  await sleep(Number(name));
  const mapping = os.mmap(fd, 1 << 16);
  formatHeader(mapping.buffer, "shm", new TextEncoder().encode(type), 1 << 16, process.pid);
  setReady(mapping.buffer);
  os.futexWake(mapping, SEG_READY, 100);
  console.log("FORMATTED");
  os.munmap(mapping);
  os.close(fd);
}

if (mode === "create") await create();
else if (mode === "attach") attach();
else if (mode === "slow-create") await slowCreate();
else throw new Error(`unknown mode ${mode}`);
void extra;
