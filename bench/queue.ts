/**
 * The message queue benchmark: 64-byte messages through one queue (a ring of 1024 slots) from
 * 1, 2 and 4 producer processes to one consumer process, all of one runtime, both sides polling
 * or both sleeping when they must wait; 4 producer processes into a queue of 16 slots, which is
 * full most of the time, so that the sleeping producers wait for room by turns; and the round
 * trip through two queues with both sides asleep between messages (two wake-ups), beside the
 * fifo's figure in bench/run.ts. Deno, Bun and Node, each with itself. With
 * `--anchors`, the C anchor (bench/anchors/mpsc.c, polling) runs the same counts in each rep.
 *
 *   deno run -A bench/queue.ts [--quick] [--reps N] [--anchors] [--out DIR] [--runtimes deno,bun,node]
 *
 * Writes queue.json (or queue-quick.json) into DIR (default bench/results) and prints a table.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { SegmentMain } from "../mod.ts";
import { done } from "./interrupt.ts";
import { type BenchRuntime, runtimesOption, startBenchPeer } from "./spawn_peer.ts";

type Runtime = BenchRuntime;
type Result = Record<string, number>;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const reps = Number(args.includes("--reps") ? args[args.indexOf("--reps") + 1] : quick ? 1 : 2);
const TOTAL = quick ? 20_000 : 2_000_000;
const outDir = args.includes("--out") ? args[args.indexOf("--out") + 1] : `${ROOT}bench/results`;
const RUNTIMES = runtimesOption(args);
const LATENCY_COUNT = quick ? 50 : 20_000;
const PRODUCERS = quick ? [1, 4] : [1, 2, 4];
/** The small queue's slots, and how many times fewer messages it moves than the others. */
const SMALL_SLOTS = 16;
const SMALL_DIVISOR = 4;

function start(runtime: Runtime, ...rest: (string | number)[]) {
  return startBenchPeer(runtime, "queue_peer.ts", rest);
}

/**
 * One case over a fresh segment: the consumer's result. Stream cases: `extra` is
 * [total, per producer, mode]; the round trip: [count], with a second queue for the echoes.
 */
async function run(
  consumerRole: string,
  producerRole: string,
  runtime: Runtime,
  producers: number,
  extra: string[],
  slots = 1024,
) {
  using sm = new SegmentMain();
  const name = `svmbench-mq-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const segment = sm.create({ type: "shm", name, size: 4 << 20 });
  const queue = segment.allocMessageQueue({ slots, slotSize: 64 })!;
  const back = segment.allocMessageQueue({ slots: 16, slotSize: 64 })!;
  const go = segment.allocFifo(4096)!;
  const ids = [String(queue.offset), String(go.offset)];
  const rtt = consumerRole === "mq-echo";
  const consumer = start(runtime, consumerRole, name, ...ids, extra[0], rtt ? String(back.offset) : extra[2]);
  const sides = Array.from({ length: producers }, (_, i) =>
    start(
      runtime,
      producerRole,
      name,
      ...ids,
      ...(rtt ? [extra[0], String(back.offset)] : [String(i), extra[1], extra[2]]),
    ));
  try {
    await Promise.all([consumer.ready, ...sides.map((s) => s.ready)]);
    go.tag = 1;
    const [got, ...sent] = await Promise.all([consumer.result, ...sides.map((s) => s.result)]);
    return rtt ? sent[0] : { ...got, longestMs: Math.max(...sent.map((r) => r.longestMs)) };
  } finally {
    consumer.kill();
    for (const s of sides) s.kill();
  }
}

const cDir = args.includes("--anchors") ? mkdtempSync(`${tmpdir()}/svmbench-c-`) : undefined;
if (cDir) execFileSync("gcc", ["-O2", "-o", `${cDir}/mpsc`, `${ROOT}bench/anchors/mpsc.c`]);
const best: Record<string, number> = {};
const keep = (key: string, value: number, higher = true) => {
  if (best[key] === undefined || (higher ? value > best[key] : value < best[key])) best[key] = value;
};
for (let rep = 0; rep < reps; rep++) {
  for (const producers of PRODUCERS) {
    const per = Math.floor(TOTAL / producers);
    if (cDir) {
      const out = execFileSync(`${cDir}/mpsc`, [String(producers), String(per)], { encoding: "utf8" });
      keep(`c-${producers}`, Number(/Mmsg\/s=([0-9.]+)/.exec(out)![1]));
    }
    for (const runtime of RUNTIMES) {
      for (const mode of ["poll", "sleep"]) {
        const got = await run("mq-consume", "mq-produce", runtime, producers, [
          String(per * producers),
          String(per),
          mode,
        ]);
        if (got.messages !== per * producers) throw new Error(`got ${got.messages} of ${per * producers}`);
        const mops = got.messages / got.seconds / 1e6;
        keep(`${runtime}-${mode}-${producers}`, mops);
        console.error(`  ${runtime} ${mode} ${producers} producers: ${mops.toFixed(2)} M/s`);
      }
    }
  }
  {
    // A queue that is full most of the time: the sleeping producers wait for room by turns.
    const per = Math.floor(TOTAL / 4 / SMALL_DIVISOR);
    for (const runtime of RUNTIMES) {
      for (const mode of ["poll", "sleep"]) {
        const got = await run(
          "mq-consume",
          "mq-produce",
          runtime,
          4,
          [String(per * 4), String(per), mode],
          SMALL_SLOTS,
        );
        if (got.messages !== per * 4) throw new Error(`got ${got.messages} of ${per * 4}`);
        const mops = got.messages / got.seconds / 1e6;
        keep(`${runtime}-${mode}-small`, mops);
        keep(`${runtime}-${mode}-small-wait`, got.longestMs, false);
        console.error(
          `  ${runtime} ${mode} 4 producers, ${SMALL_SLOTS} slots: ${mops.toFixed(2)} M/s, ` +
            `longest wait for room ${got.longestMs.toFixed(1)} ms`,
        );
      }
    }
  }
  for (const runtime of RUNTIMES) {
    const got = await run("mq-echo", "mq-ping", runtime, 1, [String(LATENCY_COUNT)]);
    keep(`${runtime}-wake-p50`, got.p50Us, false);
    keep(`${runtime}-wake-p99`, got.p99Us, false);
    console.error(`  ${runtime} sleeping round trip: p50 ${got.p50Us.toFixed(1)} us, p99 ${got.p99Us.toFixed(1)} us`);
  }
}
if (cDir) rmSync(cDir, { recursive: true, force: true });

const f = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(2));
/** A row: for each runtime its polling and sleeping figures (`key(runtime, mode)`), then `last`. */
const row = (label: string, key: (runtime: Runtime, mode: string) => string, last: string) =>
  `| ${label} | ${
    RUNTIMES.map((rt) => `${f(best[key(rt, "poll")])} | ${f(best[key(rt, "sleep")])}`).join(" | ")
  } | ${last} |`;
const lines = [
  `| 64 B messages (M/s), one consumer | ${
    RUNTIMES.map((rt) => `${rt} polling | ${rt} sleeping`).join(" | ")
  } | C (polling) |`,
  `| --- | ${RUNTIMES.map(() => "--- | ---").join(" | ")} | --- |`,
  ...PRODUCERS.map((n) =>
    row(`${n} producer process${n > 1 ? "es" : ""}`, (rt, mode) => `${rt}-${mode}-${n}`, f(best[`c-${n}`]))
  ),
  row(`4 producer processes, a queue of ${SMALL_SLOTS} slots`, (rt, mode) => `${rt}-${mode}-small`, "-"),
  row("the same: longest a message waited for room (ms)", (rt, mode) => `${rt}-${mode}-small-wait`, "-"),
  `| round trip through two queues, both asleep, p50 / p99 (us) | ${
    RUNTIMES.map((rt) => `${f(best[`${rt}-wake-p50`])} / ${f(best[`${rt}-wake-p99`])} | `).join(" | ")
  } | |`,
];
console.log(lines.join("\n"));
writeFileSync(
  `${outDir}/queue${quick ? "-quick" : ""}.json`,
  JSON.stringify(
    { date: new Date().toISOString(), quick, reps, total: TOTAL, best, table: lines.join("\n") },
    null,
    2,
  ) + "\n",
);
done();
