// An SVG chart of throughput against write size, drawn by the benchmark from its own results.

interface Point {
  kind: string;
  producer: string;
  consumer: string;
  size: number;
  gbps?: number;
}

const SERIES = [
  { label: "fifo deno→deno", kind: "fifo", rt: "deno", color: "#1f77b4", dash: "" },
  { label: "fifo bun→bun", kind: "fifo", rt: "bun", color: "#ff7f0e", dash: "" },
  { label: "unix socket deno", kind: "uds", rt: "deno", color: "#1f77b4", dash: "6 4" },
  { label: "unix socket bun", kind: "uds", rt: "bun", color: "#ff7f0e", dash: "6 4" },
  { label: "pipe deno", kind: "pipe", rt: "deno", color: "#1f77b4", dash: "2 3" },
  { label: "pipe bun", kind: "pipe", rt: "bun", color: "#ff7f0e", dash: "2 3" },
  { label: "fifo node→node", kind: "fifo", rt: "node", color: "#2ca02c", dash: "" },
  { label: "unix socket node", kind: "uds", rt: "node", color: "#2ca02c", dash: "6 4" },
  { label: "pipe node", kind: "pipe", rt: "node", color: "#2ca02c", dash: "2 3" },
];

/** Throughput (GB/s, log scale) against write size for fifo, socket and pipe in each runtime. */
export function throughputChart(rows: readonly Point[], sizes: readonly number[]): string {
  const w = 640;
  const h = 400;
  const left = 70;
  const right = 180;
  const top = 30;
  const bottom = 50;
  const values = rows.filter((r) => r.gbps !== undefined && r.gbps > 0).map((r) => r.gbps!);
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.ceil(Math.log10(Math.max(...values)));
  const x = (i: number) => left + (i * (w - left - right)) / (sizes.length - 1);
  const y = (v: number) => top + ((hi - Math.log10(v)) * (h - top - bottom)) / (hi - lo || 1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14">Throughput between two processes (GB/s, log scale)</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    out.push(`<line x1="${left}" x2="${w - right}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#ddd"/>`);
    out.push(
      `<text x="${left - 8}" y="${y(10 ** e) + 4}" text-anchor="end">${
        10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)
      }</text>`,
    );
  }
  sizes.forEach((s, i) => {
    out.push(
      `<text x="${x(i)}" y="${h - bottom + 18}" text-anchor="middle">${
        s >= 1024 ? `${s / 1024} KiB` : `${s} B`
      }</text>`,
    );
  });
  out.push(`<text x="${(left + w - right) / 2}" y="${h - 12}" text-anchor="middle">write size</text>`);
  SERIES.forEach((s, k) => {
    const pts = sizes.map((size, i) => {
      const r = rows.find((r) => r.kind === s.kind && r.producer === s.rt && r.consumer === s.rt && r.size === size);
      return r?.gbps ? `${x(i).toFixed(1)},${y(r.gbps).toFixed(1)}` : "";
    }).filter(Boolean);
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}" points="${
        pts.join(" ")
      }"/>`,
    );
    const ly = top + 10 + k * 20;
    out.push(
      `<line x1="${w - right + 10}" x2="${
        w - right + 40
      }" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`,
    );
    out.push(`<text x="${w - right + 46}" y="${ly + 4}">${s.label}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
