// SVM_LIBC_PATH chooses the C library, in both runtimes; a wrong one is a clear error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { ROOT, runtimeBinary, RUNTIMES, scriptCommand } from "./helpers.ts";

const REAL = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"].find((p) => existsSync(p));

for (const runtime of RUNTIMES) {
  test(`SVM_LIBC_PATH under ${runtime}: a path that exists is used, a wrong one named in the error`, () => {
    const run = (path: string) => {
      const [bin, argv] = scriptCommand(runtime, `${ROOT}/tests/peers/libc_peer.ts`, []);
      return spawnSync(bin, argv, { encoding: "utf8", env: { ...process.env, SVM_LIBC_PATH: path }, timeout: 60_000 })
        .stdout;
    };
    assert.match(
      run("/nonexistent/libc.so.6"),
      /^ERR Error: cannot open the C library \/nonexistent\/libc\.so\.6 \(set SVM_LIBC_PATH/m,
    );
    if (REAL) assert.match(run(REAL), /^OPENED true/m);
  });
}

test("Deno without --allow-ffi: the OS binding fails with Deno's own NotCapable error, which names the flag", () => {
  // Before, it was wrapped in a plain Error that first sent the user to SVM_LIBC_PATH.
  const run = spawnSync(
    runtimeBinary("deno"),
    ["run", "--quiet", "--allow-read", "--allow-env", `${ROOT}/tests/peers/libc_peer.ts`],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.match(run.stdout, /^ERR NotCapable: .*--allow-ffi/m, run.stderr);
});
