// A test process that is interrupted: makes a segment under a unique name, a temporary directory
// and file, and a child that has the segment mapped, prints READY with them, and waits to be killed.
//   parent       what the test kills
//   child NAME   attaches NAME and sleeps until killed
// Run by a test runner (`deno test`, `bun test`, `node --test`) with SVM_INTERRUPTED_REPORT=FILE set,
// it does what `parent` does inside a test, and writes the READY line to FILE (a runner shows a
// test's output only once the test ends).
import { test } from "node:test";
import { writeFileSync } from "node:fs";
import { SegmentMain } from "../../mod.ts";
import { RUNTIME, startPeer, tempDir, tempPath, uniqueName } from "../helpers.ts";

const [mode, arg] = process.argv.slice(2);
const report = process.env.SVM_INTERRUPTED_REPORT;
const sm = new SegmentMain();

async function parent(reportTo?: string): Promise<void> {
  const name = uniqueName("interrupted");
  sm.create({ type: "shm", name, size: 64 * 1024 });
  const dir = tempDir("interrupted");
  writeFileSync(`${dir}/file`, "x");
  const file = tempPath("interrupted", ".bin");
  writeFileSync(file, "x");
  const child = startPeer(RUNTIME, "interrupted", ["child", name], 600_000);
  await child.line(/^ATTACHED/);
  const line = `READY ${name} ${dir} ${file} ${child.pid}`;
  if (reportTo) writeFileSync(reportTo, `${line}\n`);
  else console.log(line);
}

const forever = () => new Promise(() => setInterval(() => {}, 60_000)); // until killed
if (mode === "child") {
  sm.attach({ type: "shm", name: arg });
  console.log("ATTACHED");
  await forever();
} else if (report) {
  test("interrupted", async () => {
    await parent(report);
    await forever();
  });
} else if (mode === "parent") await parent().then(forever);
else throw new Error(`unknown mode ${mode}`);
