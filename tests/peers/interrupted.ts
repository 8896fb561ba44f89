// A test process that is interrupted: makes a segment under a unique name, a temporary directory
// and file, and a child that has the segment mapped, prints READY with them, and waits to be killed.
//   parent   (what the test kills)
//   test FILE   (the same inside a node:test test, for `deno test`, whose output shows only at the
//               test's end: the READY line goes to FILE)
//   child NAME   (attaches NAME and sleeps until killed)
import { test } from "node:test";
import { writeFileSync } from "node:fs";
import { SegmentMain } from "../../mod.ts";
import { RUNTIME, startPeer, tempDir, tempPath, uniqueName } from "../helpers.ts";

const [mode, arg] = process.argv.slice(2);
const sm = new SegmentMain();

async function parent(report?: string): Promise<void> {
  const name = uniqueName("interrupted");
  sm.create({ type: "shm", name, size: 64 * 1024 });
  const dir = tempDir("interrupted");
  writeFileSync(`${dir}/file`, "x");
  const file = tempPath("interrupted", ".bin");
  writeFileSync(file, "x");
  const child = startPeer(RUNTIME, "interrupted", ["child", name], 600_000);
  await child.line(/^ATTACHED/);
  const line = `READY ${name} ${dir} ${file} ${child.pid}`;
  if (report) writeFileSync(report, `${line}\n`);
  else console.log(line);
}

const forever = () => new Promise(() => setInterval(() => {}, 60_000)); // until killed
if (mode === "parent") await parent().then(forever);
else if (mode === "test") {
  test("interrupted", async () => {
    await parent(arg);
    await forever();
  });
} else if (mode === "child") {
  sm.attach({ type: "shm", name: arg });
  console.log("ATTACHED");
  await forever();
} else throw new Error(`unknown mode ${mode}`);
