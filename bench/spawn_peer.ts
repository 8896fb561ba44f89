/**
 * Starts one side of a benchmark case as a process of a runtime (the project's own install, else
 * PATH): it prints READY once it can be measured against and RESULT {json} at its end. Killed
 * with the run on Ctrl-C (`interrupt.ts`).
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { interruptedBy, track } from "./interrupt.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A running side: ready once it printed READY, its RESULT, and a way to kill it. */
export interface RunningPeer {
  ready: Promise<void>;
  result: Promise<Record<string, number>>;
  kill(): void;
}

/** The runtimes a benchmark can run its sides in. */
export type BenchRuntime = "deno" | "bun" | "node";

/** The runtimes `--runtimes deno,bun,...` in `args` names (all three without it); throws when it names none. */
export function runtimesOption(args: readonly string[]): readonly BenchRuntime[] {
  const at = args.indexOf("--runtimes");
  const named = at >= 0 ? args[at + 1]?.split(",") : undefined;
  const runtimes = (["deno", "bun", "node"] as const).filter((rt) => named?.includes(rt) ?? true);
  if (runtimes.length === 0) throw new Error(`--runtimes names none of deno, bun, node: ${named}`);
  return runtimes;
}

/** The middle value of `xs` (the upper one of an even count), unchanged; undefined for none. */
export function median(xs: readonly number[] | undefined): number | undefined {
  if (!xs?.length) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** The runtime's binary: node_modules/.bin first. */
export function binary(runtime: string): string {
  const local = `${ROOT}node_modules/.bin/${runtime}`;
  return existsSync(local) ? local : runtime;
}

/**
 * Runs `bench/SCRIPT` under `runtime` with `rest` as its arguments. With `killedIsDone`, a peer
 * ended by SIGKILL (a server the run stops) resolves with an empty result instead of failing.
 */
export function startBenchPeer(
  runtime: BenchRuntime,
  script: string,
  rest: (string | number)[],
  killedIsDone = false,
): RunningPeer {
  const path = `${ROOT}bench/${script}`;
  const argv = runtime === "deno"
    ? ["run", "-A", "--quiet", path]
    : runtime === "node"
    ? ["--no-warnings", path]
    : [path];
  const child = spawn(binary(runtime), [...argv, ...rest.map(String)], { stdio: ["ignore", "pipe", "pipe"] });
  const untrack = track(child);
  let out = "";
  let err = "";
  let markReady = () => {};
  const ready = new Promise<void>((r) => (markReady = r));
  child.stdout!.setEncoding("utf8").on("data", (c: string) => {
    out += c;
    if (out.includes("READY")) markReady();
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  const result = new Promise<Record<string, number>>((resolve, reject) =>
    child.on("close", (code, signal) => {
      untrack();
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (interruptedBy()) reject(new Error(`interrupted by ${interruptedBy()}`));
      else if (killedIsDone && signal === "SIGKILL") resolve({});
      else if (code !== 0 || !line) reject(new Error(`${runtime} ${rest[0]} failed (${code}): ${err || out}`));
      else resolve(JSON.parse(line.slice(7)));
    })
  );
  result.catch(() => markReady()); // a peer that dies before READY must not hang the run
  return { ready, result, kill: () => child.kill("SIGKILL") };
}
