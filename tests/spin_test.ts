// Spinning waits (`spinMicros`) where the processes outnumber the CPUs: a spin that finds nothing
// for a while gives its CPU to whoever waits for it, so that a peer on the same CPU can make it
// ready, instead of holding it until the kernel preempts it (a time slice: milliseconds).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SegmentMain } from "../mod.ts";
import { expectSuccess, OTHER, ROOT, RUNTIME, scriptCommand, shmEntries, startCommand, uniqueName } from "./helpers.ts";

/** The first CPU this process may run on. */
function firstCpu(): number {
  const list = /Cpus_allowed_list:\s*(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return list ? Number(list[1]) : 0;
}

test(`spinning waits give way to the peer on their CPU: 1000 polling round trips between ${RUNTIME} and ${OTHER}, both pinned to one CPU, take less than 2 s, not a time slice each`, async () => {
  const name = uniqueName("spin");
  const rounds = 1000;
  const sm = new SegmentMain();
  try {
    const segment = sm.create({ type: "shm", name, size: 1 << 20 });
    const there = segment.allocFifo(4096)!;
    const back = segment.allocFifo(4096)!;
    const cpu = String(firstCpu());
    const side = (runtime: typeof RUNTIME, args: string[]) => {
      const [bin, argv] = scriptCommand(runtime, `${ROOT}/tests/peers/spin_peer.ts`, args);
      return startCommand("taskset", ["-c", cpu, bin, ...argv], 60_000);
    };
    const echo = side(OTHER, ["echo", name, String(there.offset), String(back.offset), String(rounds)]);
    const ping = side(RUNTIME, ["ping", name, String(there.offset), String(back.offset), String(rounds)]);
    const [pinged, echoed] = await Promise.all([ping.done, echo.done]);
    expectSuccess(pinged, "the ping side");
    expectSuccess(echoed, "the echo side");
    const { ms } = JSON.parse(/DONE (.*)/.exec(pinged.stdout)![1]);
    // Holding the CPU until preempted costs a time slice (1.5 to 4 ms here) a side: 3 s or more.
    assert.ok(ms < 2000, `${rounds} round trips took ${ms.toFixed(0)} ms (${(ms / rounds).toFixed(2)} ms each)`);
  } finally {
    sm[Symbol.dispose]();
  }
  assert.deepEqual(shmEntries(name), []);
});
