/**
 * Which C library to open: `libc.so.6` (found by the dynamic loader), or the path in the
 * environment variable `SVM_LIBC_PATH` (for a libc in an unusual place, e.g. a container image
 * or a distribution with another name for it). In Deno the variable is read only when env
 * access to it is already granted (`--allow-env` or `-A`), so nobody is prompted for it.
 *
 * @module
 */

/** The environment variable that overrides the C library's path. */
export const LIBC_PATH_VARIABLE = "SVM_LIBC_PATH";

/** The C library to dlopen. */
export function libcPath(): string {
  const g = globalThis as {
    Deno?: {
      permissions: { querySync(d: { name: "env"; variable: string }): { state: string } };
      env: { get(name: string): string | undefined };
    };
    process?: { env: Record<string, string | undefined> };
  };
  let path: string | undefined;
  if (g.Deno) {
    if (g.Deno.permissions.querySync({ name: "env", variable: LIBC_PATH_VARIABLE }).state === "granted") {
      path = g.Deno.env.get(LIBC_PATH_VARIABLE);
    }
  } else {
    path = g.process?.env[LIBC_PATH_VARIABLE];
  }
  return path && path.length > 0 ? path : "libc.so.6";
}
