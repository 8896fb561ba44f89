// The JSR package as a Deno consumer gets it: a separate project imports `jsr:@svm/fifo`, which
// its deno.json links to this checkout (Deno's `links`, as for a package not yet published), so
// the import goes through deno.json's `exports` and `publish` set exactly as from jsr.io. The
// consumer type-checks, runs a two-process exchange, and runs the CLI as `jsr:@svm/fifo/cli`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { ROOT, RUNTIME, runtimeBinary, shmEntries, tempDir, uniqueName } from "./helpers.ts";

const MAIN = `
import { SegmentMain, type Fifo } from "@svm/fifo";
const [role, name, offset] = Deno.args;
if (role === "child") {
  using sm = new SegmentMain({ timeoutSeconds: 10 });
  const fifo: Fifo = sm.attach({ type: "shm", name }).fifoAt(Number(offset));
  await fifo.waitForData({ timeoutMs: 10000 });
  const buf = new Uint8Array(64);
  console.log("CHILD GOT " + new TextDecoder().decode(buf.subarray(0, fifo.dequeue(buf))));
} else {
  using sm = new SegmentMain();
  const fifo = sm.create({ type: "shm", name, size: 1 << 20 }).allocFifo(4096)!;
  fifo.enqueue(new TextEncoder().encode("hello from jsr"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-read", "--allow-env", "main.ts", "child", name, String(fifo.offset)],
  }).outputSync();
  console.log(new TextDecoder().decode(child.stdout) + new TextDecoder().decode(child.stderr));
}
`;

test("a Deno project imports jsr:@svm/fifo (linked), type-checks, talks across processes and runs the CLI", {
  skip: RUNTIME === "deno" ? false : "run once, from the Deno run of the suite",
}, () => {
  const dir = tempDir("jsr");
  const version = JSON.parse(readFileSync(`${ROOT}/deno.json`, "utf8")).version;
  const deno = (args: string[]) => {
    const r = spawnSync(runtimeBinary("deno"), args, {
      cwd: dir,
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, DENO_DIR: `${dir}/deno-dir`, NO_COLOR: "1" },
    });
    return { ...r, all: `${r.stdout}${r.stderr}` };
  };
  const name = uniqueName("jsr");
  try {
    writeFileSync(
      `${dir}/deno.json`,
      JSON.stringify({ imports: { "@svm/fifo": `jsr:@svm/fifo@^${version}` }, links: [ROOT] }),
    );
    writeFileSync(`${dir}/main.ts`, MAIN);
    const check = deno(["check", "main.ts"]);
    assert.equal(check.status, 0, `deno check: ${check.all}`);
    const run = deno(["run", "--allow-ffi", "--allow-read", "--allow-env", "--allow-run", "main.ts", "parent", name]);
    assert.equal(run.status, 0, run.all);
    assert.match(run.stdout, /CHILD GOT hello from jsr/, run.all);
    const help = deno(["run", "-A", `jsr:@svm/fifo@^${version}/cli`, "--help"]);
    assert.equal(help.status, 0, help.all);
    assert.match(help.stdout, /^usage: cli\.ts demo/m);
    const demo = deno(["run", "-A", `jsr:@svm/fifo@^${version}/cli`, "demo", "--size", "1", "--peer", "deno"]);
    assert.equal(demo.status, 0, demo.all);
    assert.match(demo.stdout, /every echoed byte checked/, demo.all);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(shmEntries(name), []);
  assert.deepEqual(shmEntries("svm-demo-"), []);
});
