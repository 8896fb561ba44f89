/**
 * The connection benchmark: connect+accept time, the 64 B round trip over a connection with
 * both sides asleep between messages (send/receive), and a stream of 64 KiB writes through a
 * connection's writable into the peer's readable (read by a default reader, then by a BYOB
 * one); beside them, in the same run, the same round trip and stream over a Unix socket
 * (node:net) of the same runtime. Client and server are separate processes of one runtime:
 * Deno, Bun and Node.
 *
 *   deno run -A bench/connection.ts [--quick] [--out DIR] [--runtimes deno,bun,node]
 *
 * Writes connection.json (or connection-quick.json) into DIR (default bench/results).
 *
 * @module
 */

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { done } from "./interrupt.ts";
import { type BenchRuntime, median, runtimesOption, startBenchPeer } from "./spawn_peer.ts";

type Runtime = BenchRuntime;
type Result = Record<string, number>;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outDir = args.includes("--out") ? args[args.indexOf("--out") + 1] : `${ROOT}bench/results`;
const RUNTIMES = runtimesOption(args);
const CONNECTS = quick ? 100 : 2000;
const ROUNDS = quick ? 200 : 20_000;
/** Parts of the round trip, each followed by the Unix socket's (ROUNDS / PARTS rounds each). */
const PARTS = quick ? 1 : 5;
const STREAM = quick ? 16 << 20 : 1 << 30;
/** Parts of the streams, each read both ways and followed by the Unix socket's (median of each). */
const STREAM_PARTS = quick ? 1 : 3;
const WRITE = 64 * 1024;

function start(runtime: Runtime, ...rest: (string | number)[]) {
  return startBenchPeer(runtime, "connection_peer.ts", rest, true);
}

const rows: Record<string, Record<string, number>> = {};
const log = (text: string) => console.error(text);
try {
  for (const runtime of RUNTIMES) {
    const name = `svmbench-conn-${process.pid}-${runtime}`;
    const path = `${tmpdir()}/svmbench-${process.pid}-${runtime}.sock`;
    const server = start(runtime, "serve", name);
    try {
      await server.ready;
      const connects = await start(runtime, "connects", name, CONNECTS).result;
      // The round trip alternates with the Unix socket's in parts (the machine drifts by tens
      // of percent within a minute): the best p50 of each, and the median of the paired ratios.
      const parts: { rtt: Result; uds: Result }[] = [];
      for (let part = 0; part < PARTS; part++) {
        const rtt = await start(runtime, "rtt", name, ROUNDS / PARTS).result;
        try {
          const echo = start(runtime, "uds-echo", path, ROUNDS / PARTS);
          await echo.ready;
          const uds = await start(runtime, "uds-ping", path, ROUNDS / PARTS).result;
          await echo.result;
          parts.push({ rtt, uds });
        } finally {
          rmSync(path, { force: true });
        }
      }
      const best = (rs: Result[]) => rs.reduce((a, b) => (b.p50Ns < a.p50Ns ? b : a));
      const rtt = best(parts.map((p) => p.rtt));
      const udsRtt = best(parts.map((p) => p.uds));
      // The streams alternate too: the connection's read both ways, then the Unix socket's.
      const streams: { stream: number; byob: number; uds: number }[] = [];
      for (let part = 0; part < STREAM_PARTS; part++) {
        const stream = await start(runtime, "stream", name, STREAM, WRITE).result;
        const byob = await start(runtime, "stream", name, STREAM, WRITE, "count-byob").result;
        try {
          const counter = start(runtime, "uds-count", path);
          await counter.ready;
          const uds = await start(runtime, "uds-stream", path, STREAM, WRITE).result;
          await counter.result;
          streams.push({ stream: stream.gbps, byob: byob.gbps, uds: uds.gbps });
        } finally {
          rmSync(path, { force: true });
        }
      }
      rows[runtime] = {
        connectP50Us: connects.p50Us,
        connectMeanUs: connects.meanUs,
        rttP50Us: rtt.p50Ns / 1000,
        rttMeanUs: rtt.meanNs / 1000,
        rttP99Us: rtt.p99Ns / 1000,
        udsRttP50Us: udsRtt.p50Ns / 1000,
        udsRttMeanUs: udsRtt.meanNs / 1000,
        rttVsUds: median(parts.map((p) => p.rtt.p50Ns / p.uds.p50Ns))!,
        streamGbps: median(streams.map((p) => p.stream))!,
        streamByobGbps: median(streams.map((p) => p.byob))!,
        udsStreamGbps: median(streams.map((p) => p.uds))!,
        streamVsUds: median(streams.map((p) => p.stream / p.uds))!,
      };
    } finally {
      server.kill();
      await server.result;
    }
    log(`${runtime}: ${JSON.stringify(rows[runtime])}`);
  }
} finally {
  done();
}

const f = (v: number, d = 1) => v.toFixed(d);
/** A row: `cell` of each runtime's figures. */
const row = (label: string, cell: (r: Record<string, number>) => string) =>
  `| ${label} | ${RUNTIMES.map((rt) => cell(rows[rt])).join(" | ")} |`;
const lines = [
  `| connection, one runtime (client and server processes) | ${RUNTIMES.join(" | ")} |`,
  `| --- | ${RUNTIMES.map(() => "---").join(" | ")} |`,
  row("connect + accept (us, p50 / mean)", (r) => `${f(r.connectP50Us)} / ${f(r.connectMeanUs)}`),
  row("round trip 64 B, send/receive, both asleep (us, p50 / mean)", (r) => `${f(r.rttP50Us)} / ${f(r.rttMeanUs)}`),
  row("the same over a Unix socket, node:net (us, p50 / mean)", (r) => `${f(r.udsRttP50Us)} / ${f(r.udsRttMeanUs)}`),
  row(`round trip p50 over the socket's, median of ${PARTS} alternating parts`, (r) => `${f(r.rttVsUds, 2)}x`),
  row(`stream, 64 KiB writes, writable to readable (GB/s, median of ${STREAM_PARTS})`, (r) => f(r.streamGbps, 2)),
  row("the same, read with a BYOB reader into one 1 MiB buffer (GB/s)", (r) => f(r.streamByobGbps, 2)),
  row("the same over a Unix socket, node:net (GB/s)", (r) => f(r.udsStreamGbps, 2)),
  row("stream over the socket's, median of the alternating parts", (r) => `${f(r.streamVsUds, 2)}x`),
];
console.log(lines.join("\n"));
mkdirSync(outDir, { recursive: true });
writeFileSync(
  `${outDir}/${quick ? "connection-quick" : "connection"}.json`,
  JSON.stringify({ date: new Date().toISOString(), quick, rows }, null, 2) + "\n",
);
