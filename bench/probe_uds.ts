import { spawn } from "node:child_process";
const [rt = "deno", rounds = "3000"] = process.argv.slice(2);
const ROOT = new URL("..", import.meta.url).pathname;
const path = `/tmp/probe-uds-${process.pid}.sock`;
const cmd = (r: string) => r === "deno" ? [`${ROOT}node_modules/.bin/deno`, "run", "-A", "--quiet"] : [`${ROOT}node_modules/.bin/${r}`];
const run = (...args: string[]) => {
  const [bin, ...rest] = cmd(rt);
  const c = spawn(bin, [...rest, `${ROOT}bench/peer.ts`, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let text = "";
  c.stdout!.setEncoding("utf8").on("data", (d) => text += d);
  return new Promise<string>((r) => c.on("exit", () => r(text)));
};
const e = run("uds-echo", path, rounds);
await new Promise((r) => setTimeout(r, 1000));
const p = await run("uds-ping", path, rounds);
await e;
console.log("uds", rt, p.split("RESULT ")[1]);
