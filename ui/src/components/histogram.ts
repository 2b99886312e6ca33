// Matches over time by level, as stacked bars (uPlot); dragging across it selects a new range.

import uPlot from "uplot";

import type { Row } from "../api";
import { partialBuckets } from "../buckets";
import { h } from "../dom";
import { axisInk, gridInk, themedChart } from "../theme";
import { chartDate, tickTime } from "./charttime";
import { partialCaption, partialMark } from "./partialmark";
import { type Resolved } from "../timerange";

export const LEVEL_COLORS: Record<string, string> = {
  FATAL: "#7e22ce",
  ERROR: "#dc2626",
  WARN: "#b45309",
  INFO: "#2563eb",
  DEBUG: "#64748b",
  TRACE: "#94a3b8",
  OTHER: "#a3a3a3",
};
// bottom of the stack first: the levels an on-call engineer looks for sit on the axis
const STACK = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "OTHER"];

export interface HistogramData {
  x: number[]; // bucket starts, epoch seconds
  counts: Record<string, number[]>;
  total: number;
  spanS: number;
}

/** Timechart rows (`_time`, `level`, `count()`) on a full grid of buckets, zeros included. */
export function bucketize(rows: Row[], r: Resolved, spanS: number): HistogramData {
  const spanMs = spanS * 1000;
  const first = Math.floor(r.fromMs / spanMs) * spanMs;
  const n = Math.max(1, Math.ceil((r.toMs - first) / spanMs));
  const x = Array.from({ length: n }, (_, i) => (first + i * spanMs) / 1000);
  const counts: Record<string, number[]> = {};
  let total = 0;
  for (const row of rows) {
    const t = Date.parse(String(row._time));
    const i = Math.floor((t - first) / spanMs);
    if (Number.isNaN(t) || i < 0 || i >= n) continue;
    const raw = String(row.level ?? "").toUpperCase();
    const level = STACK.includes(raw) ? raw : "OTHER";
    const c = Number(row["count()"] ?? 0);
    (counts[level] ??= new Array(n).fill(0))[i] += c;
    total += c;
  }
  return { x, counts, total, spanS };
}

export interface Histogram {
  el: HTMLElement;
  draw(data: HistogramData, r: Resolved): void;
  destroy(): void;
}

/** `onPick` (optional): a bar was clicked, with the range of its bucket (the search page explains it). */
export function histogram(onZoom: (fromMs: number, toMs: number) => void,
  onPick?: (fromMs: number, toMs: number) => void): Histogram {
  const el = h("div", { class: "histogram", id: "histogram" });
  let plot: uPlot | null = null;
  let resize: ResizeObserver | null = null;
  let note: HTMLElement | null = null;

  function draw(data: HistogramData, r: Resolved) {
    plot?.destroy();
    resize?.disconnect();
    note?.remove();
    // the last bar of a range ending now is still filling: hatched, and named under the chart
    const parts = partialBuckets(data.x, data.spanS, r.fromMs, r.toMs);
    el.dataset.total = String(data.total);
    const levels = STACK.filter((l) => data.counts[l]);
    el.dataset.levels = levels.join(",");
    // stacked bars: each series is drawn from zero to the sum of its level and those below it,
    // top level first, so every level shows as its own band
    const cumulative: number[][] = [];
    let acc = new Array(data.x.length).fill(0);
    for (const level of levels) {
      acc = acc.map((v, i) => v + data.counts[level][i]);
      cumulative.push(acc);
    }
    const order = levels.map((_, i) => i).reverse();
    const bars = uPlot.paths.bars!({ size: [0.92, 60], align: 1 });
    const opts: uPlot.Options = {
      plugins: [themedChart(), partialMark(() => parts)],
      width: Math.max(el.clientWidth, 300),
      height: 150,
      padding: [8, 8, 0, 0],
      tzDate: chartDate,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: true, range: () => [r.fromMs / 1000, r.toMs / 1000] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: axisInk, grid: { show: false }, ticks: { size: 4, stroke: gridInk }, space: 70 },
        { stroke: axisInk, size: 44, grid: { stroke: gridInk, width: 1 }, ticks: { show: false } },
      ],
      series: [
        { value: (_u, v) => (v === null ? "" : tickTime(v)) },
        ...order.map((i) => ({
          label: levels[i],
          fill: LEVEL_COLORS[levels[i]],
          stroke: LEVEL_COLORS[levels[i]],
          width: 0,
          paths: bars,
          points: { show: false },
          // the legend shows the level's own count, not the stacked height
          value: (_u: uPlot, _v: number | null, _s: number, idx: number | null) =>
            idx === null ? "" : String(data.counts[levels[i]][idx]),
        })),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (to > from) onZoom(Math.floor(from), Math.ceil(to));
          },
        ],
      },
    };
    plot = new uPlot(opts, [data.x, ...order.map((i) => cumulative[i])] as uPlot.AlignedData, el);
    note = partialCaption(el, parts, data.spanS, data.x.length - 1);
    if (note) el.append(note);
    if (onPick) {
      // a click (not the end of a drag) on a bar picks that bucket
      const u = plot;
      let downX = -1;
      u.over.addEventListener("mousedown", (ev) => { downX = ev.offsetX; });
      u.over.addEventListener("click", (ev) => {
        if (downX < 0 || Math.abs(ev.offsetX - downX) > 3) return;
        const i = u.posToIdx(ev.offsetX);
        if (i === null || i < 0 || i >= data.x.length) return;
        onPick(Math.max(r.fromMs, data.x[i] * 1000), Math.min(r.toMs, (data.x[i] + data.spanS) * 1000));
      });
    }
    resize = new ResizeObserver(() => {
      if (plot && el.clientWidth > 0) plot.setSize({ width: el.clientWidth, height: 150 });
    });
    resize.observe(el);
  }

  return {
    el,
    draw,
    destroy() {
      plot?.destroy();
      resize?.disconnect();
      note?.remove();
      plot = null;
    },
  };
}
