// Peers that run "until killed" end on their own once the test process that started them is
// gone (a runner's timeout can abandon a test before its `finally` kills them): a timer looks for
// a new parent every 500 ms, and busy loops call `exitIfOrphaned()` between steps.
const parent = process.ppid;

/** Exits (code 3) when this process was reparented: the process that started it has ended. */
export function exitIfOrphaned(): void {
  if (process.ppid !== parent) process.exit(3);
}

const timer = setInterval(exitIfOrphaned, 500);
(timer as { unref?: () => void }).unref?.();
