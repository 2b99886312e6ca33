// "What changed?": the field values that set the records of a time range apart from a baseline
// (POST /api/v1/explain, docs/explain.md). Opened from the histogram (a clicked bar, or the
// Explain button for the range shown, which a drag selects); each row adds its value to the query.

import "./explain.css";
import { postJSON } from "../api";
import { clear, h } from "../dom";
import { valueLabel } from "./fieldsidebar";
import { templateText } from "./patterns";

export interface ExplainSide {
  count: number;
  share: number | null;
}

export interface ExplainValue {
  field: string;
  value: unknown;
  filter: string;
  focus: ExplainSide;
  baseline: ExplainSide;
  lift: number | null;
  new: boolean;
  g: number;
  p: number;
  significant: boolean;
  exact: boolean;
  template?: string;
  status?: string;
}

export interface ExplainNumber {
  field: string;
  focus: { count: number; p50: number | null; p95: number | null };
  baseline: { count: number; p50: number | null; p95: number | null };
  direction: string;
  significant: boolean;
}

export interface ExplainAnswer {
  focus: { from: string; to: string; count: number };
  baseline: { mode: string; from: string; to: string; count: number };
  statistic: { alpha: number; tests: number; threshold_p: number; correction: string };
  values: ExplainValue[];
  fell: ExplainValue[];
  together: { filter: string; focus: ExplainSide; baseline: ExplainSide } | null;
  numbers: ExplainNumber[];
  patterns: ExplainValue[];
  left_out: { field: string; reason: string }[];
  /** the records the columns were counted on (time slices of a large set: exact false) */
  counted?: { focus: number; baseline: number; exact: boolean };
  /** the records the attributes were compared on */
  sampled?: { focus: number; baseline: number };
}

export type Baseline = "previous" | "complement";

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);
const num = (x: number | null | undefined) => (x === null || x === undefined ? "–" : String(Math.round(x * 10) / 10));

export function liftText(v: Pick<ExplainValue, "lift" | "new">): string {
  if (v.new) return "new";
  return v.lift === null ? "–" : `${v.lift.toFixed(2)}×`;
}

/** One sentence on what was compared and how sure the ranking is. */
export function explainSummary(a: ExplainAnswer): string {
  const base = a.baseline.mode === "complement" ? "the rest of the range" : "the window before";
  if (a.baseline.count === 0) {
    return `${a.focus.count.toLocaleString("en")} records, and none in ${base} to compare them with: ` +
      (a.baseline.mode === "complement" ? "pick a narrower query." : "compare with the rest of the range instead.");
  }
  const named = a.values.filter((v) => v.significant).length;
  const n = (x: number) => x.toLocaleString("en");
  const sliced = a.counted && !a.counted.exact
    ? ` Counted on time slices: ${n(a.counted.focus)} of the ${n(a.focus.count)} records and ${n(a.counted.baseline)} of ` +
      `the ${n(a.baseline.count)} before; attributes on a sample of ${n(a.sampled?.focus ?? 0)} and ${n(a.sampled?.baseline ?? 0)}.`
    : "";
  return `${n(a.focus.count)} records against ${n(a.baseline.count)} in ${base}; ` +
    (named ? `${named} value${named === 1 ? "" : "s"} stand out` : "no value stands out") +
    ` (G-test, p < ${a.statistic.threshold_p.toPrecision(2)}: alpha ${a.statistic.alpha}, ${a.statistic.correction} over ${a.statistic.tests} tests).` +
    sliced;
}

export interface ExplainPanel {
  el: HTMLElement;
  open(q: string, fromMs: number, toMs: number): Promise<void>;
  close(): void;
}

export function explainPanel(onFilter: (field: string, value: unknown, negate: boolean) => void): ExplainPanel {
  let last: { q: string; fromMs: number; toMs: number } | null = null;
  let controller: AbortController | null = null;
  const body = h("div", { class: "explain-body", id: "explain-body", "aria-live": "polite" });
  const mode = h("select", { id: "explain-baseline", "aria-label": "baseline",
    onchange: () => { if (last) void open(last.q, last.fromMs, last.toMs); } },
  h("option", { value: "previous" }, "vs the window before"),
  h("option", { value: "complement" }, "vs the rest of the range"));
  const title = h("h2", null, "What changed");
  const el = h("section", { class: "card explain-card", id: "explain", hidden: true },
    h("div", { class: "card-head" }, title, mode,
      h("button", { type: "button", class: "link", id: "explain-close", onclick: () => close() }, "close")),
    body);

  function close() {
    controller?.abort();
    el.hidden = true;
    last = null;
  }

  function valueRow(v: ExplainValue): HTMLElement {
    const add = () => onFilter(v.field, v.value, false);
    return h("tr", { class: v.significant ? "significant" : "faint", "data-field": v.field, "data-value": String(v.value) },
      h("td", null, h("code", null, `${v.field}=${valueLabel(v.value)}`)),
      h("td", { class: "num" }, pct(v.focus.share)),
      h("td", { class: "num" }, pct(v.baseline.share)),
      h("td", { class: "num" }, liftText(v)),
      h("td", null, v.significant ? "yes" : "no"),
      h("td", null, h("button", { type: "button", class: "add-filter", title: `add ${v.filter} to the query`,
        "aria-label": `filter ${v.field} ${valueLabel(v.value)}`, onclick: add }, "+")));
  }

  function draw(a: ExplainAnswer) {
    clear(body);
    body.append(h("p", { class: "hint", id: "explain-summary" }, explainSummary(a)));
    if (a.values.length) {
      body.append(h("div", { class: "table-box" }, h("table", { class: "grid explain-values", id: "explain-values" },
        h("thead", null, h("tr", null, ["value", "here", "baseline", "lift", "significant", ""].map((c) =>
          h("th", { class: c === "here" || c === "baseline" || c === "lift" ? "num" : "" }, c)))),
        h("tbody", null, a.values.map(valueRow)))));
    }
    if (a.together) {
      body.append(h("p", { id: "explain-together" }, "Together: ", h("code", null, a.together.filter),
        ` in ${pct(a.together.focus.share)} of these records, ${pct(a.together.baseline.share)} of the baseline.`));
    }
    for (const n of a.numbers.filter((x) => x.significant)) {
      body.append(h("p", { class: "explain-number" }, h("code", null, n.field),
        ` p50 ${num(n.focus.p50)} vs ${num(n.baseline.p50)}, p95 ${num(n.focus.p95)} vs ${num(n.baseline.p95)}`));
    }
    if (a.patterns.length) {
      body.append(h("div", { class: "table-box" }, h("table", { class: "grid explain-patterns" },
        h("thead", null, h("tr", null, h("th", null, "status"), h("th", null, "template"), h("th", { class: "num" }, "here"),
          h("th", { class: "num" }, "baseline"), h("th", null, ""))),
        h("tbody", null, a.patterns.map((p) => h("tr", null,
          h("td", null, String(p.status ?? "")), h("td", null, templateText(p.template)),
          h("td", { class: "num" }, String(p.focus.count)), h("td", { class: "num" }, String(p.baseline.count)),
          h("td", null, h("button", { type: "button", class: "add-filter", title: `add ${p.filter} to the query`,
            onclick: () => onFilter("pattern_id", p.value, false) }, "+"))))))));
    }
    if (a.left_out.length) {
      body.append(h("p", { class: "hint" }, "Not compared: ",
        a.left_out.map((x, i) => h("span", { title: x.reason }, (i ? ", " : "") + x.field))));
    }
  }

  async function open(q: string, fromMs: number, toMs: number) {
    controller?.abort();
    controller = new AbortController();
    last = { q, fromMs, toMs };
    el.hidden = false;
    title.textContent = `What changed ${new Date(fromMs).toLocaleTimeString()} – ${new Date(toMs).toLocaleTimeString()}`;
    clear(body);
    body.append(h("p", { class: "hint" }, "Comparing…"));
    try {
      const answer = await postJSON<ExplainAnswer>("/api/v1/explain", {
        q, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(),
        baseline: (mode as HTMLSelectElement).value as Baseline,
      }, controller.signal, true);
      draw(answer);
    } catch (err) {
      if ((err as Error)?.name === "AbortError") return;
      clear(body);
      body.append(h("p", { class: "error", id: "explain-error" }, (err as Error).message));
    }
  }

  return { el, open, close };
}
