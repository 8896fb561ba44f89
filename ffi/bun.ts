/**
 * The {@link Os} over `bun:ffi`. This file never imports `bun:ffi` statically, so that Deno can
 * load and type-check the package without resolving it; the module is fetched with
 * `import.meta.require` only when the Bun implementation is asked for.
 *
 * @module
 */

import type { Os } from "./os.ts";
import { makeOs, type Native } from "./native.ts";
import { LIBC_SYMBOLS, type NativeKind } from "./symbols.ts";
import { LIBC_PATH_VARIABLE, libcPath } from "./libc_path.ts";

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

type BunSpec = { args: string[]; returns: string };

/**
 * The symbol table in bun:ffi's terms. Bun
 * keys a table by the real symbol name, so an alias (another prototype of the same function)
 * is returned apart, to be bound by a dlopen of its own.
 */
export function bunTable(
  only?: readonly string[],
): { table: Record<string, BunSpec>; aliases: Record<string, { name: string; spec: BunSpec }> } {
  const table: Record<string, BunSpec> = {};
  const aliases: Record<string, { name: string; spec: BunSpec }> = {};
  for (const [key, spec] of Object.entries(LIBC_SYMBOLS)) {
    if (only && !only.includes(key)) continue;
    const bun = { args: spec.args.map((a) => BUN_TYPES[a]), returns: BUN_TYPES[spec.ret] };
    if ("name" in spec && spec.name !== key) aliases[key] = { name: spec.name, spec: bun };
    else table[key] = bun;
  }
  return { table, aliases };
}

/** Binds the symbols of {@link bunTable}, aliases included, into one object of functions. */
export function bunBind(ffi: BunFfi, only?: readonly string[]): Record<string, (...args: unknown[]) => unknown> {
  const { table, aliases } = bunTable(only);
  const path = libcPath();
  try {
    const fns = { ...ffi.dlopen(path, table).symbols };
    for (const [key, { name, spec }] of Object.entries(aliases)) {
      fns[key] = ffi.dlopen(path, { [name]: spec }).symbols[name];
    }
    return fns;
  } catch (error) {
    throw new Error(`cannot open the C library ${path} (set ${LIBC_PATH_VARIABLE} to its path): ${error}`);
  }
}

/** Opens libc through `bun:ffi` and returns the {@link Os} over it. */
export function bunOs(): Os {
  const ffi = bunFfi();
  // deno-lint-ignore no-explicit-any
  const fns = bunBind(ffi) as any;
  const errnoAddress = fns.__errno_location() as number;
  const native: Native = {
    runtime: "bun",
    fns,
    // MAP_FAILED does not fit a double, so Bun hands it over as a bigint; null is never valid.
    isMapFailed: (address) => typeof address !== "number" || address <= 0,
    detachable: true,
    arrayBuffer: (address, length) => ffi.toArrayBuffer(address as number, 0, length),
    offset: (address, bytes) => (address as number) + bytes,
    addressValue: (address) => address as number,
    addressOf: (view) => ffi.ptr(view),
    errno: () => ffi.read.i32(errnoAddress, 0),
  };
  return makeOs(native);
}
