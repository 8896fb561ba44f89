/**
 * The {@link Os} over `bun:ffi`. This file never imports `bun:ffi` statically, so that Deno can
 * load and type-check the package without resolving it; the module is fetched with
 * `import.meta.require` only when the Bun implementation is asked for.
 *
 * @module
 */

import type { Os } from "./os.ts";
import { futexOutcome, makeOs, type Native } from "./native.ts";
import { BunWaitPool } from "./bun_wait_pool.ts";
import { LIBC_SYMBOLS, type NativeKind } from "./symbols.ts";

/** The part of `bun:ffi` this library uses. */
export interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  toArrayBuffer(address: number, byteOffset: number, byteLength: number): ArrayBuffer;
  read: { i32(address: number, offset: number): number };
  ptr(view: Uint8Array): number;
}

const BUN_TYPES: Record<NativeKind, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  usize: "u64",
  buffer: "ptr",
  pointer: "ptr",
  void: "void",
};

/** `bun:ffi`, fetched only when asked for. */
export function bunFfi(): BunFfi {
  const meta = import.meta as ImportMeta & { require?: (id: string) => unknown };
  if (typeof meta.require !== "function") throw new Error("bun:ffi is only available in Bun");
  return meta.require("bun:ffi") as BunFfi;
}

/** The symbol table in bun:ffi's terms (Bun has no nonblocking calls: those are left out). */
export function bunTable(only?: readonly string[]): Record<string, { args: string[]; returns: string }> {
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [key, spec] of Object.entries(LIBC_SYMBOLS)) {
    if (("nonblocking" in spec && spec.nonblocking) || (only && !only.includes(key))) continue;
    table[key] = { args: spec.args.map((a) => BUN_TYPES[a]), returns: BUN_TYPES[spec.ret] };
  }
  return table;
}

/** Opens libc through `bun:ffi` and returns the {@link Os} over it. */
export function bunOs(): Os {
  const ffi = bunFfi();
  // deno-lint-ignore no-explicit-any
  const fns = ffi.dlopen("libc.so.6", bunTable()).symbols as any;
  const pool = new BunWaitPool();
  const errnoAddress = fns.__errno_location() as number;
  const native: Native = {
    runtime: "bun",
    fns,
    // MAP_FAILED does not fit a double, so Bun hands it over as a bigint; null is never valid.
    isMapFailed: (address) => typeof address !== "number" || address <= 0,
    arrayBuffer: (address, length) => ffi.toArrayBuffer(address as number, 0, length),
    offset: (address, bytes) => (address as number) + bytes,
    addressValue: (address) => address as number,
    addressOf: (view) => ffi.ptr(view),
    errno: () => ffi.read.i32(errnoAddress, 0),
    futexWaitAsync: async (address, expected, timeoutMs) => {
      const { result, errno } = await pool.wait(address as number, expected, timeoutMs);
      return futexOutcome(result, errno);
    },
    release: () => pool.close(),
  };
  return makeOs(native);
}
