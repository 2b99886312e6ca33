// Trace view: one request as ALB, NGINX and the app saw it — the waterfall and timing breakdown
// of GET /api/v1/traces/{id}, then every record of the request in order.

import "./trace.css";
import { getExactJSON, jsonText, type Row } from "../api";
import { recordItem } from "../components/records";
import { offsetText } from "../components/clocks";
import { clear, h } from "../dom";
import { type GapNote, negativeGapNote } from "../gaps";
import { addFilter, quoteValue } from "../querytext";
import { navigate, type Page } from "../router";
import { searchUrl } from "../searchurl";

interface Bar {
  label: string;
  layer: string;
  start_ms: number;
  duration_ms: number;
  record: number;
}

interface TraceAnswer {
  id: string;
  trace_id: string | null;
  request_ids: string[];
  layers: string[];
  timings: {
    alb: null | Record<string, number | null>;
    nginx: null | Record<string, number | string | null>;
    app: null | Record<string, number | string | null>;
    gaps: Record<string, number | null>;
    clock?: ClockApplied;
  };
  waterfall: { start: string | null; bars: Bar[]; events: { record: number; layer: string; at_ms: number }[] };
  records: Row[];
  stats: { elapsed_ms: number; records: number; truncated: boolean };
}

interface ClockApplied {
  mode: "adjusted" | "raw";
  reference: string | null;
  applied: { clock: string; layer: string; offset_ms: number; uncertainty_ms: number | null; records: number[] }[];
}

/** What the waterfall's clock-placed times are: corrected by which offsets, or as logged. */
function clockNote(c: ClockApplied | undefined, raw: boolean): HTMLElement {
  if (raw || !c || c.mode === "raw") {
    return h("p", { class: "hint clock-note", id: "clock-note" },
      "Times as each host logged them (no clock correction).");
  }
  if (!c.applied.length) {
    return h("p", { class: "hint clock-note", id: "clock-note" },
      "No clock offset applied: no host of this request has a known offset.");
  }
  return h("p", { class: "hint clock-note", id: "clock-note" },
    `Clock offsets applied (against ${c.reference ?? "the reference"}): `,
    c.applied.map((a, i) => h("span", { class: "applied", "data-clock": a.clock }, i ? ", " : "",
      h("code", null, a.clock), ` ${offsetText(a)}`)));
}

const ms = (v: unknown) => (typeof v === "number" ? `${v.toFixed(v < 10 ? 2 : 1)} ms` : "—");

function breakdownTable(t: TraceAnswer["timings"]): HTMLElement {
  const rows: [string, string, unknown][] = [];
  if (t.alb) {
    rows.push(["alb", "request processing", t.alb.request_processing_ms]);
    rows.push(["alb", "target processing", t.alb.target_processing_ms]);
    rows.push(["alb", "response processing", t.alb.response_processing_ms]);
  }
  // each gap: the outer layer's duration minus the inner one's, each on its own machine's clock
  const alb = { name: "the ALB", key: "alb" };
  const nginx = { name: "NGINX", key: "nginx" };
  const upstream = { name: "NGINX's upstream timer", key: "upstream" };
  const app = { name: "the app", key: "app" };
  const gap = (v: number | null | undefined, a: typeof alb, b: typeof alb) => negativeGapNote(v ?? null, a, b);
  const notes = new Map<number, GapNote>();
  const push = (row: [string, string, unknown], note: GapNote | null = null) => {
    if (note) notes.set(rows.length, note);
    rows.push(row);
  };
  push(["gap", "ALB → NGINX (network, queueing)", t.gaps.alb_to_nginx_ms], gap(t.gaps.alb_to_nginx_ms, alb, nginx));
  if (t.nginx) {
    rows.push(["nginx", "request time", t.nginx.request_time_ms]);
    rows.push(["nginx", `upstream response time${t.nginx.upstream ? ` (${t.nginx.upstream})` : ""}`,
      t.nginx.upstream_response_time_ms]);
  }
  push(["gap", "NGINX overhead", t.gaps.nginx_overhead_ms], gap(t.gaps.nginx_overhead_ms, nginx, upstream));
  push(["gap", "NGINX → app", t.gaps.nginx_to_app_ms], gap(t.gaps.nginx_to_app_ms, upstream, app));
  if (t.app) rows.push(["app", `app ${t.app.instance ?? t.app.service ?? ""}`, t.app.duration_ms]);
  return h("table", { class: "grid breakdown", id: "breakdown" },
    h("thead", null, h("tr", null, h("th", null, "layer"), h("th", null, "step"), h("th", { class: "num" }, "time"))),
    h("tbody", null, rows.map(([layer, step, v], i) => {
      const note = notes.get(i);
      return h("tr", { "data-layer": layer, "data-negative": note ? note.kind : null, class: note ? "negative-gap" : null },
        h("td", null, h("span", { class: `layer-tag layer-${layer}` }, layer)),
        h("td", null, step, note ? h("div", { class: "gap-note", role: "note" }, note.text) : null),
        h("td", { class: "num" }, ms(v), note ? h("span", { class: "gap-flag", "aria-hidden": "true" }, " ⚠") : null));
    })),
  );
}

/** The axis's five labels where they fit apart; on a narrow track (a phone) the ends and the
 * middle, or only the ends, rather than labels drawn over each other. */
function spaceTicks(ticks: HTMLElement[]): void {
  const apart = (shown: HTMLElement[]) => shown.every((t, i) =>
    i === 0 || shown[i - 1].getBoundingClientRect().right + 4 <= t.getBoundingClientRect().left);
  for (const keep of [[0, 1, 2, 3, 4], [0, 2, 4], [0, 4]]) {
    ticks.forEach((t, i) => { t.hidden = !keep.includes(i); });
    if (apart(keep.map((i) => ticks[i]))) return;
  }
}

function waterfallView(answer: TraceAnswer, onPick: (record: number) => void): HTMLElement {
  const bars = answer.waterfall.bars;
  const events = answer.waterfall.events;
  // the axis spans the bars; a record written outside them (NGINX stamps whole seconds, so its
  // clock may put it before the request began) sits at the edge, its own offset in its title
  const end = Math.max(1, ...bars.map((b) => b.start_ms + b.duration_ms));
  const begin = Math.min(0, ...bars.map((b) => b.start_ms));
  const total = end - begin;
  const pct = (v: number) => `${(((v - begin) / total) * 100).toFixed(3)}%`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { class: "tick", "data-left": pct(begin + f * total) }, ms(begin + f * total)));
  const rows = bars.map((b) => {
    const bar = h("div", { class: `bar layer-${b.layer}`, title: `${b.label}: ${ms(b.duration_ms)}` });
    bar.style.left = pct(b.start_ms);
    bar.style.width = `${Math.max((b.duration_ms / total) * 100, 0.3).toFixed(3)}%`;
    return h("div", {
      class: "wf-row", "data-layer": b.layer, role: "button", tabindex: "0",
      onclick: () => onPick(b.record),
    },
    h("span", { class: "wf-label" }, h("span", { class: `layer-tag layer-${b.layer}` }, b.layer), " ", b.label),
    h("span", { class: "wf-track" }, bar),
    h("span", { class: "wf-ms" }, ms(b.duration_ms)));
  });
  for (const t of ticks) t.style.left = t.dataset.left ?? "0";
  if (!bars.length) {
    return h("p", { class: "hint", id: "waterfall" },
      "None of these records carries a layer's own timing (ALB processing times, NGINX request time, " +
        "an app's duration), so there is no waterfall; the records below are in time order.");
  }
  const dots = events.map((e) => {
    const dot = h("span", {
      class: `dot layer-${e.layer}`, role: "button", tabindex: "0", "data-record": String(e.record),
      title: `record ${e.record + 1} (${e.layer}) written at ${ms(e.at_ms)}`,
      onclick: (ev: Event) => {
        ev.stopPropagation();
        onPick(e.record);
      },
    });
    dot.style.left = pct(Math.min(Math.max(e.at_ms, begin), end));
    if (e.at_ms < begin || e.at_ms > end) dot.classList.add("outside");
    return dot;
  });
  const axis = h("span", { class: "wf-track" }, ticks);
  new ResizeObserver(() => spaceTicks(ticks)).observe(axis);
  return h("div", { class: "waterfall", id: "waterfall" },
    h("div", { class: "wf-row wf-axis" }, h("span", { class: "wf-label" }), axis, h("span", { class: "wf-ms" })),
    rows,
    h("div", { class: "wf-row wf-events" }, h("span", { class: "wf-label" }, "records written"),
      h("span", { class: "wf-track" }, dots), h("span", { class: "wf-ms" }, String(events.length))));
}

export function tracePage(): Page {
  let controller: AbortController | null = null;
  return {
    async mount(root, url) {
      const id = decodeURIComponent(url.pathname.replace(/^\/ui\/trace\/?/, ""));
      document.title = id ? `Trace ${id} · logharbor` : "Traces · logharbor";
      const input = h("input", {
        id: "trace-id", type: "text", value: id, placeholder: "trace id, X-Amzn-Trace-Id, traceparent or request id",
        spellcheck: "false", "aria-label": "trace id",
      });
      input.value = id;
      const form = h("form", { class: "querybar", role: "search" }, input, h("button", { type: "submit", class: "primary" }, "Open"));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (v) navigate(`/ui/trace/${encodeURIComponent(v)}`);
      });
      const raw = url.searchParams.get("clock") === "raw";
      const toggle = h("input", { type: "checkbox", id: "clock-raw", checked: raw });
      toggle.addEventListener("change", () => {
        navigate(`/ui/trace/${encodeURIComponent(id)}${toggle.checked ? "?clock=raw" : ""}`, true);
      });
      const rawLabel = h("label", { class: "clock-toggle", title: "show each host's times as logged, " +
        "without the clock offsets the server estimated" }, toggle, " raw clock times");
      const body = h("div", { class: "trace-body", id: "trace" });
      root.append(h("div", { class: "page trace" }, h("div", { class: "trace-bar" }, form, id ? rawLabel : null), body));
      if (!id) {
        body.append(h("p", { class: "hint" },
          "Open a trace from any record that has a trace_id or request_id (expand it in Search or Live tail), " +
            "or paste an id above."));
        return;
      }
      controller = new AbortController();
      body.append(h("p", { class: "hint" }, "Loading…"));
      let answer: TraceAnswer;
      try {
        answer = await getExactJSON<TraceAnswer>(`/api/v1/traces/${encodeURIComponent(id)}${raw ? "?clock=raw" : ""}`,
          controller.signal);
        // the records keep their values' text; the server's timings are numbers to compute with
        // (a whole -3.0 ms gap is not Number.isFinite as an ExactNumber)
        answer = { ...JSON.parse(jsonText({ ...answer, records: [] })), records: answer.records };
      } catch (err) {
        if ((err as Error).name === "AbortError") return;
        clear(body);
        body.append(h("p", { class: "form-error", id: "trace-error" }, (err as Error).message));
        return;
      }
      clear(body);
      const records = h("ol", { class: "records", id: "trace-records" });
      const items = answer.records.map((rec, i) => {
        const item = recordItem(rec, (field, value, negate) => {
          navigate(searchUrl(addFilter("*", field, value, negate), { from: "now-24h", to: "now" }));
        });
        item.dataset.index = String(i);
        const layer = String(rec.source ?? "").toLowerCase();
        const tag = layer === "alb" || layer === "nginx" ? layer : "app";
        item.dataset.layer = tag;
        const ev = answer.waterfall.events.find((e) => e.record === i);
        item.querySelector(".summary")?.prepend(
          h("span", { class: `layer-tag layer-${tag}` }, tag),
          h("span", { class: "offset" }, ev ? `${ev.at_ms >= 0 ? "+" : ""}${ev.at_ms.toFixed(1)} ms` : ""),
        );
        return item;
      });
      records.append(...items);
      const pick = (i: number) => {
        const item = items[i];
        if (!item) return;
        items.forEach((el) => el.classList.remove("picked"));
        item.classList.add("picked");
        item.scrollIntoView({ block: "nearest", behavior: "smooth" });
      };
      // a request id is the client's text (spaces, quotes, * …): quoted as any clicked value
      const traceQuery = answer.trace_id ? `trace_id:${quoteValue(answer.trace_id)}`
        : `request_id:${quoteValue(answer.request_ids[0] ?? id)}`;
      body.append(
        h("section", { class: "card trace-head" },
          h("h2", null, "Request ", h("code", null, answer.trace_id ?? id)),
          h("p", { class: "layers", id: "trace-layers" },
            answer.layers.map((l) => h("span", { class: `layer-tag layer-${l}`, "data-layer": l }, l)),
            ` ${answer.stats.records} records`,
            answer.stats.truncated ? " (truncated)" : "",
            " · ",
            h("a", { href: searchUrl(traceQuery, { from: "now-7d", to: "now" }), "data-link": "" }, "open in search")),
        ),
        h("div", { class: "trace-grid" },
          h("section", { class: "card" }, h("h2", null, "Waterfall"), waterfallView(answer, pick),
            clockNote(answer.timings.clock, raw)),
          h("section", { class: "card" }, h("h2", null, "Timing breakdown"),
            h("div", { class: "table-box" }, breakdownTable(answer.timings)))),
        h("section", { class: "card" }, h("h2", null, "Records, in order"), records),
      );
    },
    unmount() {
      controller?.abort();
    },
  };
}
