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

/**
 * The environment variable `name`, or undefined. In Deno it is read only when env access to it is
 * already granted, so that nobody is prompted and a process run with only `--allow-ffi` does not
 * throw `NotCapable`.
 */
export function grantedEnv(name: string): string | undefined {
  const g = globalThis as {
    Deno?: {
      permissions: { querySync(d: { name: "env"; variable: string }): { state: string } };
      env: { get(name: string): string | undefined };
    };
    process?: { env: Record<string, string | undefined> };
  };
  if (g.Deno) {
    return g.Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
      ? g.Deno.env.get(name)
      : undefined;
  }
  return g.process?.env[name];
}

/** The C library to dlopen. */
export function libcPath(): string {
  const path = grantedEnv(LIBC_PATH_VARIABLE);
  return path && path.length > 0 ? path : "libc.so.6";
}
