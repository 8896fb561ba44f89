/**
 * Ctrl-C or SIGTERM during a benchmark: the peers it runs are killed, so that each case's
 * cleanup (its `using` segment, its `finally`) runs as the failure unwinds, and nothing is left
 * in /dev/shm. The run then ends with an error that says it was interrupted.
 *
 * @module
 */

const running = new Set<{ kill(): void }>();
let by: string | undefined;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    by = signal;
    for (const child of running) child.kill();
  });
}

/** Which signal interrupted the run, if one did. */
export function interruptedBy(): string | undefined {
  return by;
}

/** Kills `child` if the run is interrupted while it runs; call the returned function once it ended. */
export function track(child: { kill(): void }): () => void {
  if (by) child.kill();
  running.add(child);
  return () => running.delete(child);
}

/** Lets the process end once the run is over (the signal listeners would keep Bun alive). */
export function done(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.removeAllListeners(signal);
}
