/**
 * Picks the {@link Os} implementation for the runtime this code runs in.
 *
 * @module
 */

import type { Os } from "./os.ts";
import { denoOs } from "./deno.ts";
import { bunOs } from "./bun.ts";
import { nodeOs } from "./node.ts";

/** The runtime this code runs in, or undefined for one without a supported FFI. */
export function currentRuntime(): "deno" | "bun" | "node" | undefined {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  if (g.process?.versions?.node !== undefined) return "node";
  return undefined;
}

function checkPlatform(): void {
  const g = globalThis as {
    Deno?: { build: { os: string; arch: string } };
    process?: { platform: string; arch: string };
  };
  const os = g.Deno?.build.os ?? g.process?.platform;
  const arch = g.Deno?.build.arch ?? g.process?.arch;
  if (os !== "linux" || (arch !== "x86_64" && arch !== "x64")) {
    throw new Error(`shared segments need Linux on x86_64 (futex number, struct stat layout); this is ${os}/${arch}`);
  }
}

/**
 * Opens libc for the current runtime. Each call binds afresh; a {@link SegmentMain} binds once
 * and keeps the result, so there is no module-level state.
 */
export function loadOs(): Os {
  const runtime = currentRuntime();
  if (runtime === undefined) throw new Error("shared segments need Deno, Bun or Node 26 (their FFI reaches libc)");
  checkPlatform();
  return runtime === "deno" ? denoOs() : runtime === "bun" ? bunOs() : nodeOs();
}
