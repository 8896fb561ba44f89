// Scenarios of the hardening tests that could crash the process running them on a library that
// gets them wrong (SIGBUS, SIGSEGV), so they run in a child process of their own.
//   enospc NAME         create an 8 MiB shm segment (in a 2 MiB tmpfs) and touch every page
//   transfer NAME       detach a zero-copy view's buffer, go on, delete, touch the moved buffer
//   wait NAME OFFSET    attach and wait for data on the fifo at OFFSET until killed
//   sparse NAME         (in a 2 MiB tmpfs) a segment whose pages past its header were never
//                       reserved (not this library's create: a sparse copy), the tmpfs filled up;
//                       attach it and fill a fifo
//   sparse-header NAME  the same with nothing reserved at all, the header page included (and no
//                       creator: it is "abandoned")
import { OsError, SegmentError, SegmentMain } from "../../mod.ts";
import { closeSync, openSync, readSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import "./orphan.ts"; // ends with the test process that started it

const [mode, name, extra] = process.argv.slice(2);

function enospc(): void {
  using sm = new SegmentMain();
  try {
    const segment = sm.create({ type: "shm", name, size: 8 << 20 });
    // Touching every page: without reserved pages this is where a full tmpfs kills us.
    const fifo = segment.allocFifo(4 << 20)!;
    const chunk = new Uint8Array(64 * 1024);
    while (fifo.enqueue(chunk) > 0);
    console.log("CREATED");
  } catch (error) {
    console.log(error instanceof OsError ? `OSERROR ${error.call} ${error.code}` : `OTHER ${error}`);
  }
}

function transfer(): void {
  const sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const fifo = segment.allocFifo(4096)!;
  fifo.enqueue(new Uint8Array([1, 2, 3, 4]));
  // What a postMessage transfer list does to a view's buffer.
  const moved = (fifo.readSegments()[0].buffer as ArrayBuffer).transfer();
  // The library's own memory is untouched: the fifo goes on working.
  fifo.enqueue(new Uint8Array([5]));
  const out = new Uint8Array(5);
  if (fifo.dequeue(out) !== 5 || out.join() !== "1,2,3,4,5") throw new Error(`read ${out}`);
  const again = fifo.writeSegments();
  if (again.length === 0 || again[0].byteLength === 0) throw new Error("no fresh view after a transfer");
  sm.delete(segment);
  // The moved buffer now sees private zero pages: no fault, and not the next segment's bytes.
  const stale = new Uint8Array(moved);
  const next = sm.create({ type: "shm", name: `${name}-next`, size: 1 << 20 });
  const nextFifo = next.allocFifo(4096)!;
  nextFifo.enqueue(new Uint8Array(100).fill(7));
  stale.fill(9);
  let sum = 0;
  for (let i = 0; i < stale.length; i += 4096) sum += stale[i];
  const check = new Uint8Array(100);
  nextFifo.dequeue(check);
  if (check.some((b) => b !== 7)) throw new Error("the moved buffer wrote into the next segment");
  sm.delete(next);
  console.log(`OK ${sum > 0 ? "readable" : "zero"}`);
}

async function wait(): Promise<void> {
  const sm = new SegmentMain();
  const segment = sm.attach({ type: "shm", name });
  const fifo = segment.fifoAt(Number(extra));
  const waiting = fifo.waitForData();
  console.log("WAITING");
  await waiting;
  console.log("WOKE");
}

/** Writes to a file until the tmpfs is full, to the last page. */
function fillTmpfs(path: string): void {
  const fd = openSync(path, "w", 0o600);
  for (const size of [64 << 10, 4096]) {
    const chunk = new Uint8Array(size).fill(1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch { /* ENOSPC: on to smaller writes */ }
  }
  closeSync(fd);
}

function sparse(header: boolean): void {
  using sm = new SegmentMain({ timeoutSeconds: 1 });
  const path = `/dev/shm/${name}`;
  const head = new Uint8Array(64 << 10);
  if (header) {
    // A real segment's first 64 KiB, copied into a file of the same size whose other pages are holes.
    const legit = sm.create({ type: "shm", name: `${name}-legit`, size: 1 << 20 });
    const fd = openSync(`/dev/shm/${name}-legit`, "r");
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    sm.delete(legit);
    writeFileSync(path, head, { mode: 0o600 });
  } else {
    writeFileSync(path, new Uint8Array(0), { mode: 0o600 });
  }
  truncateSync(path, 1 << 20);
  fillTmpfs(`/dev/shm/${name}-filler`);
  try {
    const segment = sm.attach({ type: "shm", name });
    const fifo = segment.allocFifo(512 << 10)!;
    while (fifo.enqueue(head) > 0);
    console.log("FILLED");
  } catch (error) {
    console.log(
      error instanceof OsError
        ? `OSERROR ${error.call} ${error.code}`
        : error instanceof SegmentError
        ? `SEGMENTERROR ${error.code}`
        : `OTHER ${error}`,
    );
  }
}

if (mode === "enospc") enospc();
else if (mode === "sparse") sparse(true);
else if (mode === "sparse-header") sparse(false);
else if (mode === "transfer") transfer();
else if (mode === "wait") await wait();
else throw new Error(`unknown mode ${mode}`);
