// Aggregation answers drawn: `| timechart …` as lines over time, `| stats … by …` (and `top`) as
// bars per group, with a Chart/Table toggle beside them. uPlot draws both, as it draws the
// histogram; values are rounded for reading (the table keeps every digit in a cell's title).

import uPlot from "uplot";

import { num, type QueryAnswer, type Row } from "../api";
import { h } from "../dom";
import { axisInk, gridInk, themedChart } from "../theme";
import { partialBuckets } from "../buckets";
import { byFields, timechartColumns, timechartSpan, valueColumns } from "../panelquery";
import { type Resolved } from "../timerange";
import { chartDate, tickTime } from "./charttime";
import { LEVEL_COLORS } from "./histogram";
import { partialCaption, partialMark } from "./partialmark";
import { numberText, tableView, valueText } from "./records";

const PALETTE = ["#2563eb", "#16a34a", "#b45309", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c",
  "#475569", "#9333ea", "#0d9488", "#a16207"];
/** Lines or bars drawn; the rest are named in a note (the table has them all). */
export const MAX_SERIES = 12;
export const MAX_BARS = 40;

export type AggView = "chart" | "table";

const short = (t: string) => (t.length > 18 ? `${t.slice(0, 17)}…` : t);

function color(label: string, i: number): string {
  return LEVEL_COLORS[label.toUpperCase()] ?? PALETTE[i % PALETTE.length];
}

export interface AggChart {
  el: HTMLElement;
  destroy(): void;
}

/** Can this answer be drawn? (a timechart, or a table with a numeric column) */
export function chartable(answer: QueryAnswer): boolean {
  if (!answer.rows.length) return false;
  if (answer.kind === "timechart") return true;
  return answer.kind === "table" && answer.columns.some((c) => answer.rows.some((r) => num(r[c]) !== null));
}

function plot(el: HTMLElement, make: (width: number) => uPlot): { destroy(): void } {
  let chart: uPlot | null = null;
  const resize = new ResizeObserver(() => {
    const width = el.clientWidth;
    if (width <= 0) return;
    if (!chart) chart = make(width);
    else if (Math.abs(chart.width - width) > 1) chart.setSize({ width, height: chart.height });
  });
  resize.observe(el);
  return { destroy() { resize.disconnect(); chart?.destroy(); } };
}

/** `| timechart` rows as one line per group and value column (the largest MAX_SERIES). */
function lines(answer: QueryAnswer, q: string, r: Resolved, box: HTMLElement, note: HTMLElement) {
  const values = timechartColumns(q).filter((c) => answer.columns.includes(c.name));
  const valueNames = new Set(values.map((c) => c.name));
  const cols = values.length ? values : [{ name: answer.columns[answer.columns.length - 1], zero: false }];
  const groups = answer.columns.filter((c) => c !== "_time" && !valueNames.has(c) && !cols.some((v) => v.name === c));
  const times = [...new Set(answer.rows.map((row) => Date.parse(String(row._time))))]
    .filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, i]));
  const series = new Map<string, { label: string; total: number; values: (number | null)[]; zero: boolean }>();
  for (const row of answer.rows) {
    const i = at.get(Date.parse(String(row._time)));
    if (i === undefined) continue;
    const group = groups.map((g) => valueText(row[g] ?? "") || "(none)").join(" · ");
    for (const col of cols) {
      const label = [group, cols.length > 1 || !group ? col.name : ""].filter(Boolean).join(" · ");
      let s = series.get(label);
      if (!s) {
        s = { label, total: 0, values: new Array(times.length).fill(col.zero ? 0 : null), zero: col.zero };
        series.set(label, s);
      }
      const v = num(row[col.name]);
      s.values[i] = v;
      s.total += Math.abs(v ?? 0);
    }
  }
  const ranked = [...series.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
  const drawn = ranked.slice(0, MAX_SERIES);
  if (ranked.length > MAX_SERIES) note.textContent = `The ${MAX_SERIES} largest of ${ranked.length} series are drawn.`;
  box.dataset.series = String(drawn.length);
  const x = times.map((t) => t / 1000);
  // the query's span, else the answer's (the closest two buckets): a bucket the range cuts is marked
  const gaps = x.slice(1).map((t, i) => t - x[i]).filter((d) => d > 0);
  const spanS = timechartSpan(q) ?? (gaps.length ? Math.min(...gaps) : null);
  const parts = spanS ? partialBuckets(x, spanS, r.fromMs, r.toMs) : [];
  const caption = spanS ? partialCaption(box, parts, spanS, x.length - 1) : null;
  if (caption) box.after(caption);
  return plot(box, (width) => new uPlot({
    plugins: [themedChart(), partialMark(() => parts, (spanS ?? 0) / 2)],
    width, height: 240, padding: [8, 8, 0, 0],
    tzDate: chartDate,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: () => [r.fromMs / 1000, r.toMs / 1000] },
      y: { range: (_u, _min, max) => [0, Math.max(max, 1e-9) * 1.1] } },
    axes: [
      { stroke: axisInk, grid: { show: false }, ticks: { size: 3, stroke: gridInk }, space: 70 },
      { stroke: axisInk, size: 56, grid: { stroke: gridInk }, ticks: { show: false },
        values: (_u, vals) => vals.map((v) => numberText(v)) },
    ],
    series: [
      { value: (_u, v) => (v === null ? "" : tickTime(v)) },
      ...drawn.map((s, i) => ({ label: s.label, stroke: color(s.label, i), width: 1.5, points: { show: x.length < 60 },
        value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? "—" : numberText(v)) })),
    ],
  }, [x, ...drawn.map((s) => s.values)] as uPlot.AlignedData, box));
}

/** `| stats … by …` rows as bars: one bar per group (the largest MAX_BARS), one series per number column. */
function bars(answer: QueryAnswer, q: string, box: HTMLElement, note: HTMLElement) {
  const by = byFields(q).filter((f) => answer.columns.includes(f));
  const measures = answer.columns.filter((c) => !by.includes(c) && answer.rows.some((r) => num(r[c]) !== null));
  const groupCols = by.length ? by : answer.columns.filter((c) => !measures.includes(c));
  const label = (row: Row) => groupCols.map((g) => valueText(row[g] ?? "") || "(none)").join(" · ") || "all";
  const rows = [...answer.rows].sort((a, b) => (num(b[measures[0]]) ?? 0) - (num(a[measures[0]]) ?? 0))
    .slice(0, MAX_BARS);
  if (answer.rows.length > MAX_BARS) note.textContent = `The ${MAX_BARS} largest of ${answer.rows.length} groups are drawn.`;
  const labels = rows.map(label);
  box.dataset.bars = String(rows.length);
  box.dataset.labels = JSON.stringify(labels);
  const x = labels.map((_, i) => i);
  const n = measures.length;
  const width = Math.min(0.8, 0.9 / n);
  return plot(box, (w) => new uPlot({
    plugins: [themedChart()],
    width: w, height: 260, padding: [8, 8, 0, 0],
    legend: { show: n > 1, live: true },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: false, range: () => [-0.6, labels.length - 0.4] },
      y: { range: (_u, _min, max) => [0, Math.max(max, 1e-9) * 1.1] } },
    axes: [
      { stroke: axisInk, grid: { show: false }, ticks: { show: false }, size: labels.length > 8 ? 90 : 40,
        rotate: labels.length > 8 ? -35 : 0, splits: () => x, values: (_u, vals) => vals.map((v) => short(labels[v] ?? "")) },
      { stroke: axisInk, size: 56, grid: { stroke: gridInk }, ticks: { show: false },
        values: (_u, vals) => vals.map((v) => numberText(v)) },
    ],
    series: [
      { value: (_u, v) => (v === null ? "" : labels[v] ?? "") },
      ...measures.map((m, i) => ({
        label: m, fill: color(n === 1 && by.length === 1 ? labels[0] : m, i), stroke: color(m, i), width: 0,
        paths: n === 1 ? uPlot.paths.bars!({ size: [0.7, 80] }) : uPlot.paths.bars!({ disp: {
          // grouped bars: series i sits at its own offset inside each group's slot (data units)
          x0: { unit: 1, values: () => x.map((v) => v + (i - n / 2) * width) },
          size: { unit: 1, values: () => [width * 0.92] },
        } }),
        points: { show: false },
        value: (_u: uPlot, v: number | null) => (v === null ? "—" : numberText(v)),
      })),
    ],
  }, [x, ...measures.map((m) => rows.map((r) => num(r[m])))] as uPlot.AlignedData, box));
}

/** The answer as a chart (when it can be drawn) or a table; `view` says which shows first. */
export function aggChart(answer: QueryAnswer, q: string, r: Resolved, view: AggView,
  onView: (v: AggView) => void): AggChart {
  const canDraw = chartable(answer);
  const shown: AggView = canDraw ? view : "table";
  const note = h("p", { class: "hint", id: "chart-note" });
  const box = h("div", { class: "agg-chart", id: "agg-chart", "data-kind": answer.kind });
  const table = h("div", { class: "table-box" }, tableView(answer.columns, answer.rows, valueColumns(q, answer.columns)));
  const pick = (v: AggView, text: string) => h("button", { type: "button", role: "tab", class: "tab", id: `view-${v}`,
    "aria-selected": String(shown === v), disabled: !canDraw && v === "chart",
    onclick: () => { if (v !== shown) onView(v); } }, text);
  const el = h("div", { class: "agg", "data-view": shown },
    h("div", { class: "tabs", role: "tablist", "aria-label": "show as" }, pick("chart", "Chart"), pick("table", "Table")),
    note);
  let chart: { destroy(): void } | null = null;
  if (shown === "chart") {
    el.append(box);
    chart = answer.kind === "timechart" ? lines(answer, q, r, box, note) : bars(answer, q, box, note);
  } else {
    el.append(table);
  }
  return { el, destroy: () => chart?.destroy() };
}
