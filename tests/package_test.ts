// The npm package as a consumer gets it: `npm pack`, installed into a separate project, used by
// Node and by Bun for a two-process exchange, its CLI run by npx and bunx, and type-checked there with tsc.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { ROOT, RUNTIME, runtimeBinary, shmEntries, tempDir, uniqueName } from "./helpers.ts";

const MAIN = `
import { spawnSync } from "node:child_process";
import { SegmentMain } from "svm-fifo";
const [name, runtime, ...runArgs] = process.argv.slice(2);
if (name === "child") {
  const sm = new SegmentMain({ timeoutSeconds: 10 });
  const fifo = sm.attach({ type: "shm", name: runtime }).fifoAt(Number(runArgs[0]));
  await fifo.waitForData({ timeoutMs: 10000 });
  const buf = new Uint8Array(64);
  console.log("CHILD GOT " + new TextDecoder().decode(buf.subarray(0, fifo.dequeue(buf))));
  sm[Symbol.dispose]();
} else {
  using sm = new SegmentMain();
  const segment = sm.create({ type: "shm", name, size: 1 << 20 });
  const fifo = segment.allocFifo(4096);
  fifo.enqueue(new TextEncoder().encode("hello from the package"));
  const child = spawnSync(runtime, [...runArgs, "child", name, String(fifo.offset)], { encoding: "utf8" });
  process.stdout.write(child.stdout + child.stderr);
}
`;

const TYPED = `
import { SegmentMain, type Fifo, type MessageQueue } from "svm-fifo";
using sm = new SegmentMain();
const segment = sm.create({ type: "private", name: "types", size: 1 << 16 });
const fifo: Fifo | null = segment.allocFifo(4096);
const queue: MessageQueue | null = segment.allocMessageQueue({ slots: 4, slotSize: 16 });
console.log(fifo?.offset, queue?.capacity);
`;

test(`npm pack: a separate project installs the package; node and bun use it across processes; tsc accepts it`, {
  skip: RUNTIME === "deno" ? false : "packed and checked once, from the Deno run of the suite",
}, () => {
  const dir = tempDir("consumer");
  const npm = (args: string[], cwd: string) => {
    const r = spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `npm ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  try {
    npm(["pack", "--pack-destination", dir, "--silent"], ROOT);
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
    assert.ok(tarball, "npm pack made a tarball");
    writeFileSync(`${dir}/package.json`, JSON.stringify({ name: "consumer", private: true, type: "module" }));
    npm(["install", "--no-audit", "--no-fund", "--silent", `./${tarball}`], dir);
    const installed = readdirSync(`${dir}/node_modules/svm-fifo`).sort();
    assert.deepEqual(installed, ["LICENSE", "README.md", "dist", "package.json"], "only what users need");
    assert.ok(existsSync(`${dir}/node_modules/.bin/svm-fifo`), "the CLI is the package's bin");
    assert.equal(existsSync(`${dir}/node_modules/deno`), false, "the dev runtimes are not pulled in");
    writeFileSync(`${dir}/main.mjs`, MAIN);
    for (const [runtime, args] of [["node", ["--no-warnings"]], ["bun", []]] as const) {
      const bin = runtimeBinary(runtime);
      const name = uniqueName(`pkg-${runtime}`);
      const run = spawnSync(bin, [...args, "main.mjs", name, bin, ...args, "main.mjs"], {
        cwd: dir,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(run.status, 0, `${runtime}: ${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /CHILD GOT hello from the package/, `${runtime}: ${run.stdout}${run.stderr}`);
      assert.deepEqual(shmEntries(name), []);
    }
    // The CLI as the package's bin: npx and bunx find it; it parses strictly; its demo talks to a
    // peer in another runtime (found on PATH, as a user's install would have it).
    const env = { ...process.env, PATH: `${ROOT}/node_modules/.bin:${process.env.PATH}` };
    const cli = (command: string[]) =>
      spawnSync(command[0], command.slice(1), { cwd: dir, env, encoding: "utf8", timeout: 120_000 });
    for (const runner of [["npx", "--no-install"], [runtimeBinary("bun"), "x"]]) {
      const help = cli([...runner, "svm-fifo", "--help"]);
      assert.equal(help.status, 0, `${runner.join(" ")} svm-fifo --help: ${help.stdout}${help.stderr}`);
      assert.match(help.stdout, /^usage: svm-fifo demo/m);
      const bad = cli([...runner, "svm-fifo", "show", "--bogus"]);
      assert.equal(bad.status, 2, `${runner.join(" ")} svm-fifo show --bogus`);
      assert.match(bad.stderr, /Unknown option '--bogus'/);
    }
    const demo = cli(["node_modules/.bin/svm-fifo", "demo", "--size", "1", "--peer", "bun"]);
    assert.equal(demo.status, 0, `svm-fifo demo: ${demo.stdout}${demo.stderr}`);
    assert.match(demo.stdout, /echo peer in bun/);
    assert.match(demo.stdout, /every echoed byte checked/);
    writeFileSync(`${dir}/typed.ts`, TYPED);
    for (const types of ["node", "bun"]) {
      writeFileSync(
        `${dir}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            target: "esnext",
            module: "nodenext",
            moduleResolution: "nodenext",
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: [types],
            typeRoots: [`${ROOT}/node_modules/@types`],
          },
          files: ["typed.ts"],
        }),
      );
      const tsc = spawnSync(`${ROOT}/node_modules/.bin/tsc`, ["-p", dir], { encoding: "utf8", timeout: 120_000 });
      assert.equal(tsc.status, 0, `tsc with @types/${types}: ${tsc.stdout}${tsc.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
