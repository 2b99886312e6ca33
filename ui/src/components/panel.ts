// One dashboard panel: its query run through POST /api/v1/query over the dashboard's range, shown
// as a time chart, a table, a single value, a top-N list or log records. Every panel leads to the
// search behind it: the title opens the panel's records, and a click on a bucket, a row, a value
// or a field narrows that search to what was clicked.

import { ApiError, num, type QueryAnswer, runQuery } from "../api";
import type { PanelSpec } from "../dashboards";
import { clear, h } from "../dom";
import { byFields, groupQuery, recordsQuery, timechartColumns, timechartSpan, withSpan } from "../panelquery";
import { addFilter, highlightPattern } from "../querytext";
import { link, navigate } from "../router";
import { searchUrl } from "../searchurl";
import { iso, pickSpan, type Resolved, spanText, type TimeRange } from "../timerange";
import { LEVEL_COLORS } from "./histogram";
import { type LineChart, lineChart, type LineSeries } from "./linechart";
import { numberText, recordItem, valueText as exactText } from "./records";

/** A timechart draws at most this many buckets; a finer `span=` is widened for the range. */
const MAX_BUCKETS = 400;
/** Lines drawn per chart; the rest are named in a note. */
const MAX_SERIES = 12;
/** Records a logs panel shows (the search behind it has the rest). */
const LOG_ROWS = 50;
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c",
  "#475569", "#9333ea", "#0d9488", "#b45309"];
/** HTTP status lines by class, so errors read as errors: 2xx blue/green, 3xx grey, 4xx amber, 5xx red. */
const STATUS_SHADES: Record<string, string[]> = {
  "1": ["#94a3b8"], "2": ["#2563eb", "#16a34a", "#0891b2"], "3": ["#64748b", "#94a3b8"],
  "4": ["#d97706", "#ca8a04", "#ea580c", "#a16207", "#f59e0b"], "5": ["#dc2626", "#9f1239", "#db2777", "#7f1d1d", "#e11d48"],
};

/** A series' color: a log level's own, an HTTP status by its class, else the palette in turn. */
function seriesColor(label: string, i: number, used: Map<string, number>): string {
  const level = LEVEL_COLORS[label.toUpperCase()];
  if (level) return level;
  if (/^[1-5]\d\d$/.test(label)) {
    const shades = STATUS_SHADES[label[0]];
    const n = used.get(label[0]) ?? 0;
    used.set(label[0], n + 1);
    return shades[n % shades.length];
  }
  return PALETTE[i % PALETTE.length];
}

export interface PanelView {
  el: HTMLElement;
  /** Run the query over `r` (links keep `range`, as the user chose it); keeps the old answer until the new one. */
  load(r: Resolved, range: TimeRange, signal: AbortSignal): Promise<void>;
  destroy(): void;
}

/** A value as a panel shows it; `measure`: a number read as a quantity (1,347.16), not an id or a
 * code, which is shown as the server wrote it (-0.0, 1.0). */
function valueText(v: unknown, measure = true): string {
  if (v === null || v === undefined) return "";
  const n = num(v);
  return n !== null && measure ? numberText(n, v) : exactText(v);
}

export function panelView(spec: PanelSpec, index: number): PanelView {
  const titleLink = link("#", spec.title, "panel-title");
  titleLink.title = "open the records behind this panel in search";
  const note = h("span", { class: "hint panel-note" });
  const body = h("div", { class: "panel-body" }, h("p", { class: "hint" }, "Loading…"));
  const el = h("section", {
    class: `card panel w-${Math.min(12, Math.max(1, spec.width || 6))} panel-${spec.type}`,
    "data-panel": index, "data-type": spec.type, "data-state": "loading",
  }, h("div", { class: "card-head" }, h("h2", null, titleLink), note), body);
  let chart: LineChart | null = null;

  function show(state: string, ...content: (Node | string)[]) {
    chart?.destroy();
    chart = null;
    clear(body);
    body.append(...content);
    el.dataset.state = state;
  }

  function timechart(answer: QueryAnswer, r: Resolved, spanS: number | null) {
    const values = timechartColumns(spec.query).filter((c) => answer.columns.includes(c.name));
    const valueNames = new Set(values.map((c) => c.name));
    const groups = answer.columns.filter((c) => c !== "_time" && !valueNames.has(c));
    // the buckets: a full grid when the span is known, else the times the answer has
    const times = [...new Set(answer.rows.map((row) => Date.parse(String(row._time))))].filter((t) => !Number.isNaN(t))
      .sort((a, b) => a - b);
    let x: number[];
    if (spanS !== null && spanS >= 1) {
      const spanMs = spanS * 1000;
      const first = Math.floor(r.fromMs / spanMs) * spanMs;
      const n = Math.max(1, Math.ceil((r.toMs - first) / spanMs));
      x = Array.from({ length: n }, (_, i) => first + i * spanMs);
    } else {
      x = times;
    }
    const at = new Map(x.map((t, i) => [t, i]));
    const series = new Map<string, { label: string; total: number; values: (number | null)[] }>();
    const cols = values.length ? values : [{ name: answer.columns[answer.columns.length - 1], zero: false }];
    for (const row of answer.rows) {
      const i = at.get(Date.parse(String(row._time)));
      if (i === undefined) continue;
      const group = groups.map((g) => valueText(row[g], false) || "(none)").join(" · ");
      for (const col of cols) {
        const label = [group, cols.length > 1 || !group ? col.name : ""].filter(Boolean).join(" · ");
        let s = series.get(label);
        if (!s) {
          s = { label, total: 0, values: new Array(x.length).fill(col.zero ? 0 : null) };
          series.set(label, s);
        }
        const v = num(row[col.name]);
        s.values[i] = v;
        s.total += Math.abs(v ?? 0);
      }
    }
    if (!series.size) {
      show("empty", h("p", { class: "hint" }, "No data in this range."));
      return;
    }
    const ranked = [...series.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
    const drawn = ranked.slice(0, MAX_SERIES).sort((a, b) => a.label.localeCompare(b.label, "en", { numeric: true }));
    const used = new Map<string, number>();
    const lines: LineSeries[] = drawn.map((s, i) => ({ label: s.label, values: s.values, color: seriesColor(s.label, i, used) }));
    const step = spanS ?? (x.length > 1 ? (x[1] - x[0]) / 1000 : (r.toMs - r.fromMs) / 1000);
    const records = recordsQuery(spec.query);
    const made = lineChart("", spec.unit ? ` ${spec.unit}` : "", x.map((t) => t / 1000), lines,
      [r.fromMs / 1000, r.toMs / 1000],
      (t) => navigate(searchUrl(records, { from: iso(t * 1000), to: iso((t + step) * 1000) })), 180,
      spanS !== null && spanS >= 1 ? spanS : undefined);
    show("ready", made.el);
    chart = made;
    el.dataset.series = String(series.size);
    if (ranked.length > MAX_SERIES) note.textContent += ` ${ranked.length - MAX_SERIES} more series not drawn.`;
  }

  function table(answer: QueryAnswer, range: TimeRange) {
    if (!answer.rows.length) {
      show("empty", h("p", { class: "hint" }, "No rows in this range."));
      return;
    }
    const by = byFields(spec.query).filter((f) => answer.columns.includes(f));
    const grid = h("table", { class: "grid" },
      h("thead", null, h("tr", null, answer.columns.map((c) =>
        h("th", { class: num(answer.rows[0][c]) !== null ? "num" : "" }, c)))),
      h("tbody", null, answer.rows.map((row) => {
        const target = by.length ? searchUrl(groupQuery(spec.query, by.map((f) => [f, row[f]])), range) : null;
        return h("tr", null, answer.columns.map((c) => {
          const text = valueText(row[c], !by.includes(c));
          const cell = target && by.includes(c) ? link(target, text || "(none)") : text;
          return h("td", { class: num(row[c]) !== null ? "num" : "" }, cell);
        }));
      })));
    show("ready", h("div", { class: "table-box panel-scroll" }, grid));
  }

  function single(answer: QueryAnswer, range: TimeRange) {
    const column = spec.column && answer.columns.includes(spec.column) ? spec.column : answer.columns[0];
    const row = answer.rows[0];
    if (!row || column === undefined) {
      show("empty", h("p", { class: "hint" }, "No value in this range."));
      return;
    }
    const value = row[column];
    const big = link(searchUrl(recordsQuery(spec.query), range), valueText(value) || "—", "single-value");
    big.dataset.value = String(value ?? "");
    show("ready", h("div", { class: "single" }, big, spec.unit ? h("span", { class: "single-unit" }, spec.unit) : null,
      h("div", { class: "hint" }, column)));
  }

  function top(answer: QueryAnswer, range: TimeRange) {
    const field = byFields(spec.query)[0] ?? answer.columns[0];
    const countCol = answer.columns.find((c) => c === "count") ?? answer.columns[answer.columns.length - 1];
    if (!answer.rows.length) {
      show("empty", h("p", { class: "hint" }, "No values in this range."));
      return;
    }
    const max = Math.max(...answer.rows.map((row) => num(row[countCol]) ?? 0), 1);
    const list = h("ol", { class: "top-list" }, answer.rows.map((row) => {
      const value = row[field];
      const count = num(row[countCol]) ?? 0;
      const bar = h("span", { class: "top-bar" });
      bar.style.width = `${((count / max) * 100).toFixed(1)}%`;
      return h("li", { "data-value": String(value ?? "") },
        link(searchUrl(groupQuery(spec.query, [[field, value]]), range), valueText(value, false) || "(none)", "top-label"),
        h("span", { class: "top-track" }, bar),
        h("span", { class: "top-count" }, count.toLocaleString("en")));
    }));
    show("ready", list);
  }

  function logs(answer: QueryAnswer, range: TimeRange) {
    if (!answer.rows.length) {
      show("empty", h("p", { class: "hint" }, "No records in this range."));
      return;
    }
    const onFilter = (field: string, value: unknown, negate: boolean) =>
      navigate(searchUrl(addFilter(recordsQuery(spec.query), field, value, negate), range));
    const re = highlightPattern(spec.query);
    show("ready", h("ol", { class: "records panel-scroll" }, answer.rows.map((row) => recordItem(row, onFilter, re))),
      answer.rows.length >= LOG_ROWS
        ? h("p", { class: "hint" }, `The newest ${LOG_ROWS}; `, link(searchUrl(recordsQuery(spec.query), range), "all in search →"))
        : "");
  }

  return {
    el,
    async load(r, range, signal) {
      titleLink.href = searchUrl(recordsQuery(spec.query), range);
      note.textContent = "";
      if (el.dataset.state !== "ready") show("loading", h("p", { class: "hint" }, "Loading…"));
      else el.dataset.state = "loading";
      let q = spec.query;
      let spanS: number | null = null;
      if (spec.type === "timechart") {
        spanS = timechartSpan(q);
        if (spanS !== null && (r.toMs - r.fromMs) / 1000 / spanS > MAX_BUCKETS) {
          // a 1m span over 30 days would be 43,200 buckets: draw the range at a span it can hold
          spanS = pickSpan(r, MAX_BUCKETS);
          q = withSpan(q, spanText(spanS));
          note.textContent = `span ${spanText(spanS)} for this range.`;
        }
      }
      let answer: QueryAnswer;
      try {
        answer = await runQuery(q, iso(r.fromMs), iso(r.toMs), spec.type === "logs" ? LOG_ROWS : null, signal);
      } catch (err) {
        if ((err as Error).name === "AbortError") return;
        const msg = err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error).message ?? err);
        show("error", h("p", { class: "form-error panel-error" }, msg));
        return;
      }
      if (signal.aborted) return;
      if (spec.type === "timechart" && answer.kind === "timechart") timechart(answer, r, spanS);
      else if (spec.type === "single") single(answer, range);
      else if (spec.type === "top") top(answer, range);
      else if (spec.type === "logs" && answer.kind === "records") logs(answer, range);
      else table(answer, range);
    },
    destroy() {
      chart?.destroy();
    },
  };
}
