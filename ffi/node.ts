/**
 * The {@link Os} over Node's `node:ffi` (Node 26, experimental). Like `bun.ts`, this file never
 * imports `node:ffi` statically; it is fetched through `process.getBuiltinModule` only when the
 * Node implementation is asked for.
 *
 * @module
 */

import type { Os } from "./os.ts";
import { makeOs, type Native } from "./native.ts";
import { LIBC_SYMBOLS, type NativeKind } from "./symbols.ts";
import { LIBC_PATH_VARIABLE, libcPath } from "./libc_path.ts";

/** The part of `node:ffi` this library uses. */
export interface NodeFfi {
  DynamicLibrary: new (path: string) => {
    getFunction(name: string, signature: { arguments: string[]; return: string }): (...args: unknown[]) => unknown;
  };
  toArrayBuffer(pointer: bigint, length: number, copy: boolean): ArrayBuffer;
  getRawPointer(view: Uint8Array): bigint;
  getInt32(pointer: bigint, offset?: number): number;
}

/** Node's type names for the runtime-neutral kinds (a typed array is passed as a pointer). */
const NODE_TYPES: Record<NativeKind, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  usize: "u64",
  buffer: "pointer",
  pointer: "pointer",
  void: "void",
};

/** `node:ffi`, fetched only when asked for. */
export function nodeFfi(): NodeFfi {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const ffi = get?.("node:ffi") as NodeFfi | undefined;
  if (!ffi) throw new Error("node:ffi is not available (Node 26 or later, without --no-experimental-ffi)");
  return ffi;
}

/** Binds the libc symbols (all of them, or `only`) through `node:ffi`. */
export function nodeBind(ffi: NodeFfi, only?: readonly string[]): Record<string, (...args: unknown[]) => unknown> {
  const path = libcPath();
  try {
    // One signature per function per library object: an alias (another prototype of the same
    // function) gets a library object of its own.
    const lib = new ffi.DynamicLibrary(path);
    const fns: Record<string, (...args: unknown[]) => unknown> = {};
    for (const [key, spec] of Object.entries(LIBC_SYMBOLS)) {
      if (only && !only.includes(key)) continue;
      const alias = "name" in spec && spec.name !== key;
      const signature = { arguments: spec.args.map((a) => NODE_TYPES[a]), return: NODE_TYPES[spec.ret] };
      fns[key] = (alias ? new ffi.DynamicLibrary(path) : lib).getFunction(alias ? spec.name : key, signature);
    }
    return fns;
  } catch (error) {
    throw new Error(`cannot open the C library ${path} (set ${LIBC_PATH_VARIABLE} to its path): ${error}`);
  }
}

/** Opens libc through `node:ffi` and returns the {@link Os} over it. */
export function nodeOs(): Os {
  const ffi = nodeFfi();
  // deno-lint-ignore no-explicit-any
  const fns = nodeBind(ffi) as any;
  const errnoAddress = fns.__errno_location() as bigint;
  const native: Native = {
    runtime: "node",
    fns,
    // MAP_FAILED is (void *)-1; pointers come back as bigints.
    isMapFailed: (address) => typeof address !== "bigint" || address === 0n || address === 0xffff_ffff_ffff_ffffn,
    detachable: true,
    arrayBuffer: (address, length) => ffi.toArrayBuffer(address as bigint, length, false),
    offset: (address, bytes) => (address as bigint) + BigInt(bytes),
    addressValue: (address) => Number(address as bigint),
    addressOf: (view) => Number(ffi.getRawPointer(view)),
    errno: () => ffi.getInt32(errnoAddress, 0),
  };
  return makeOs(native);
}
