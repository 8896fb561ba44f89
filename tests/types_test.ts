// The package type-checks in projects of the other runtimes: tsc (the typescript package) over a
// consumer that imports mod.ts, with Bun's types and with Node's, and no Deno types in sight.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { ROOT, tempDir } from "./helpers.ts";

const TSC = `${ROOT}/node_modules/.bin/tsc`;

for (const types of ["bun", "node"]) {
  test(`tsc --noEmit: a consumer with @types/${types} type-checks against mod.ts`, {
    skip: existsSync(TSC) ? false : "typescript is not installed (npm install)",
  }, () => {
    const dir = tempDir("types");
    try {
      writeFileSync(
        `${dir}/main.ts`,
        `import { SegmentMain, type Fifo, type MessageQueue } from ${JSON.stringify(`${ROOT}/mod.ts`)};\n` +
          `using sm = new SegmentMain();\n` +
          `const segment = sm.create({ type: "private", name: "types", size: 1 << 16 });\n` +
          `const fifo: Fifo | null = segment.allocFifo(4096);\n` +
          `const queue: MessageQueue | null = segment.allocMessageQueue({ slots: 4, slotSize: 16 });\n` +
          `console.log(fifo?.offset, queue?.capacity, sm.removeStale({ prefix: "x" }).length);\n`,
      );
      writeFileSync(
        `${dir}/tsconfig.json`,
        JSON.stringify({
          compilerOptions: {
            target: "esnext",
            module: "preserve",
            moduleResolution: "bundler",
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            skipLibCheck: true,
            types: [types],
            typeRoots: [`${ROOT}/node_modules/@types`],
          },
          include: ["main.ts"],
        }),
      );
      const run = spawnSync(TSC, ["-p", dir], { encoding: "utf8", timeout: 120_000 });
      assert.equal(run.status, 0, run.stdout + run.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
