/**
 * The {@link Os} over `Deno.dlopen`.
 *
 * @module
 */

import type { Os } from "./os.ts";
import { makeOs, type Native } from "./native.ts";
import { LIBC_SYMBOLS, type NativeKind } from "./symbols.ts";
import { LIBC_PATH_VARIABLE, libcPath } from "./libc_path.ts";

/**
 * The part of Deno's FFI this file uses, declared here rather than taken from Deno's global
 * types, so that the package type-checks in projects that have no Deno types (a Bun project
 * with `@types/bun`, a Node project with `@types/node`).
 */
type Pointer = object;
interface ForeignFunction {
  name?: string;
  parameters: string[];
  result: string;
}
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, ForeignFunction>): { symbols: Record<string, unknown> };
  UnsafePointer: {
    value(pointer: Pointer | null): bigint | number;
    offset(pointer: Pointer, bytes: number): Pointer;
    of(view: Uint8Array): Pointer | null;
  };
  UnsafePointerView: {
    new (pointer: Pointer): { getInt32(offset?: number): number };
    getArrayBuffer(pointer: Pointer, length: number): ArrayBuffer;
  };
  /** Deno's error classes: a missing permission is `NotCapable` (Deno 2), `PermissionDenied` before. */
  errors?: Record<string, new (...args: never[]) => Error>;
}

const DENO_TYPES: Record<NativeKind, string> = {
  i32: "i32",
  u32: "u32",
  i64: "i64",
  usize: "usize",
  buffer: "buffer",
  pointer: "pointer",
  void: "void",
};

function denoSymbols(): Record<string, ForeignFunction> {
  const out: Record<string, ForeignFunction> = {};
  for (const [key, spec] of Object.entries(LIBC_SYMBOLS)) {
    const s = spec as (typeof LIBC_SYMBOLS)[keyof typeof LIBC_SYMBOLS] & { name?: string };
    out[key] = { name: s.name, parameters: s.args.map((a) => DENO_TYPES[a]), result: DENO_TYPES[s.ret] };
  }
  return out;
}

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Opens libc through `Deno.dlopen` and returns the {@link Os} over it. */
export function denoOs(): Os {
  const Deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const path = libcPath();
  let lib: { symbols: Record<string, unknown> };
  try {
    lib = Deno.dlopen(path, denoSymbols());
  } catch (error) {
    // A missing --allow-ffi is no matter of the library's path: Deno's own error, which names the flag, goes as it is.
    const { NotCapable, PermissionDenied } = Deno.errors ?? {};
    if ((NotCapable && error instanceof NotCapable) || (PermissionDenied && error instanceof PermissionDenied)) {
      throw error;
    }
    throw new Error(`cannot open the C library ${path} (set ${LIBC_PATH_VARIABLE} to its path): ${error}`);
  }
  // deno-lint-ignore no-explicit-any
  const fns = lib.symbols as any;
  const errnoPointer = fns.__errno_location() as Pointer;
  const errnoView = new Deno.UnsafePointerView(errnoPointer);
  const native: Native = {
    runtime: "deno",
    fns,
    isMapFailed: (address) => address === null || BigInt(Deno.UnsafePointer.value(address as Pointer)) === MAP_FAILED,
    detachable: false,
    arrayBuffer: (address, length) => Deno.UnsafePointerView.getArrayBuffer(address as Pointer, length),
    offset: (address, bytes) => Deno.UnsafePointer.offset(address as Pointer, bytes),
    addressValue: (address) => Number(Deno.UnsafePointer.value(address as Pointer)),
    addressOf: (view) => Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view))),
    // errno is thread-local; the JS thread's location is fixed for the life of the thread.
    errno: () => errnoView.getInt32(),
  };
  return makeOs(native);
}
