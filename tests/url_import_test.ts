// Import by URL, as users do: the repository is served over HTTP on 127.0.0.1 and a Deno
// process imports mod.ts from there, then creates, attaches and deletes a segment.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { normalize } from "node:path";
import { ROOT, runtimeBinary, shmEntries, tempDir, tracked, uniqueName } from "./helpers.ts";

test("a Deno process imports mod.ts by URL and uses it", async () => {
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url!, "http://x").pathname));
    requested.push(path);
    if (!path.endsWith(".ts") || path.includes("..") || path.startsWith("/node_modules")) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = readFileSync(ROOT + path);
      res.writeHead(200, { "content-type": "application/typescript; charset=utf-8" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const dir = tempDir("url");
  const name = uniqueName("url");
  try {
    const script = `${dir}/main.ts`;
    writeFileSync(
      script,
      `import { SegmentMain } from "http://127.0.0.1:${port}/mod.ts";
       using creator = new SegmentMain();
       using attacher = new SegmentMain();
       const seg = creator.create({ type: "shm", name: ${JSON.stringify(name)}, size: 65536 });
       const fifo = seg.allocFifo(1000)!;
       fifo.enqueue(new TextEncoder().encode("by url"));
       const other = attacher.attach({ type: "shm", name: ${JSON.stringify(name)} });
       const buf = new Uint8Array(16);
       const n = other.fifoAt(fifo.offset).dequeue(buf);
       attacher.delete(other);
       creator.delete(seg);
       console.log("RESULT " + new TextDecoder().decode(buf.subarray(0, n)));
      `,
    );
    const child = tracked(spawn(runtimeBinary("deno"), [
      "run",
      "--quiet",
      `--allow-import=127.0.0.1:${port}`,
      "--allow-ffi",
      "--allow-read",
      "--allow-env",
      "--no-lock",
      "--no-config",
      script,
    ], { env: { ...process.env, DENO_DIR: `${dir}/deno-dir` }, stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    let err = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, `deno failed: ${err}`);
    assert.match(out, /^RESULT by url$/m);
    assert.ok(requested.includes("/mod.ts"));
    assert.ok(requested.some((p) => p.startsWith("/ffi/")), "ffi/ came over HTTP too");
    assert.ok(!requested.some((p) => p.includes("bun:")), "Deno never asked for bun:ffi");
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(shmEntries(name), []);
});
