// Search: query box with suggestions, time picker, histogram by level (drag to zoom), the field
// sidebar, newest-first records with infinite scroll (or chosen columns), records that open to
// JSON, copy, link, surrounding records and trace; aggregations as charts or tables; a Patterns
// tab; and the way on to a saved query, a dashboard panel or an alert.
// The URL holds the query, the range, the tab, the columns and the chart/table choice.

import { type QueryAnswer, type Row, runQuery, savedQueries } from "../api";
import type { AggChart, AggView } from "../components/aggchart";
import { fetchFields, type FieldsAnswer, fieldSidebar, type UnknownField } from "../components/fieldsidebar";
import type { ExplainPanel } from "../components/explain";
import { bucketize, histogram } from "../components/histogram";
import { patternsTable } from "../components/patterns";
import { queryBar } from "../components/querybar";
import { ensureTabStop, navigableRows, recordItem, type RecordActions } from "../components/records";
import type { ActionKind } from "../components/searchactions";
import { attachSuggest } from "../components/suggest";
import { timePicker } from "../components/timepicker";
import { replaceField } from "../completion";
import { clear, h } from "../dom";
import { addFilter, filterPart, highlightPattern, pipeIndex, quoteValue } from "../querytext";
import { type Page, reflect } from "../router";
import { searchUrl, type View } from "../searchurl";
import { recent, remember } from "../settings";
import {
  apiBounds, DEFAULT_RANGE, iso, nextNanosecond, pickSpan, type Resolved, resolve, spanText, type TimeRange,
} from "../timerange";

const PAGE_SIZE = 100;

/**
 * A search that finds one record: its very instant (to the nanosecond), and its service, host,
 * instance, level and message (records of one request often share an instant).
 */
export function recordLink(record: Row): string {
  const ts = String(record.timestamp ?? "");
  const terms = ["service", "host", "instance", "level"].filter((k) => typeof record[k] === "string" && record[k])
    .map((k) => `${k}:${quoteValue(record[k])}`);
  const message = typeof record.message === "string" ? record.message : "";
  if (message && message.length <= 300 && !/[\r\n]/.test(message)) terms.push(`message:${quoteValue(message)}`);
  return searchUrl(terms.join(" AND ") || "*", { from: ts, to: nextNanosecond(ts) }, "records", { open: true });
}

/** Field names and values for the query box, fetched once per time range. */
function suggestionSource(range: () => TimeRange) {
  const cache = new Map<string, Promise<unknown>>();
  const cached = <T>(key: string, make: () => Promise<T>): Promise<T> => {
    let p = cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = make();
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };
  const params = () => ({ q: "*", from: range().from, to: range().to });
  return {
    fields: () => cached(`f ${range().from} ${range().to}`, async () =>
      (await fetchFields({ ...params(), top: "1" }, undefined, true)).fields.map((f) => f.name)),
    values: (field: string) => cached(`v ${range().from} ${range().to} ${field}`, async () =>
      (await fetchFields({ ...params(), field, top: "30" }, undefined, true)).fields[0]?.top.map((t) => t.value) ?? []),
    recent: () => recent("queries"),
    saved: () => cached("saved", savedQueries),
  };
}

export function searchPage(): Page {
  let controller: AbortController | null = null;
  let observer: IntersectionObserver | null = null;
  let hist: ReturnType<typeof histogram> | null = null;
  let chart: AggChart | null = null;
  let onKey: ((ev: KeyboardEvent) => void) | null = null;

  return {
    mount(root, url) {
      const params = url.searchParams;
      let q = params.get("q") ?? "*";
      let range: TimeRange = {
        from: params.get("from") ?? DEFAULT_RANGE.from,
        to: params.get("to") ?? DEFAULT_RANGE.to,
      };
      let view: View = params.get("view") === "patterns" ? "patterns" : "records";
      let columns = (params.get("cols") ?? "").split(",").map((c) => c.trim()).filter(Boolean);
      let agg: AggView = params.get("agg") === "table" ? "table" : "chart";
      let openFirst = params.get("open") === "1";
      let lastKind: QueryAnswer["kind"] = "records";
      document.title = "Search · logharbor";

      const bar = queryBar(q, (text) => {
        q = text;
        void run(true);
      });
      bar.box.append(attachSuggest(bar.input, suggestionSource(() => range), () => {
        q = bar.value();
        void run(true);
      }));
      const picker = timePicker(range, (r) => {
        range = r;
        void run(true);
      });
      bar.extra.append(picker.el);
      const warning = h("div", { class: "query-warning", id: "query-warning", role: "status", hidden: true });
      // the dialogs load with their first use: the search page itself stays small
      const dialogs = h("div", { class: "dialogs" });
      const state = { query: () => q, range: () => range, kind: () => lastKind };
      const action = (kind: ActionKind, id: string, label: string) => h("button", { type: "button", id,
        onclick: async () => (await import("../components/searchactions")).openAction(kind, state, dialogs) }, label);
      const actions = h("div", { class: "search-actions" }, action("save", "action-save", "Save query"),
        action("dashboard", "action-dashboard", "Add to dashboard"), action("alert", "action-alert", "Create alert"));
      // the explain panel loads with its first use, as the dialogs do: the first search stays small
      const explainSlot = h("div", { class: "explain-slot" });
      let panel: Promise<ExplainPanel> | null = null;
      const explain = {
        open: async (text: string, fromMs: number, toMs: number) => {
          panel ??= import("../components/explain").then(({ explainPanel }) => {
            const made = explainPanel((field, value, negate) => onFilter(field, value, negate));
            explainSlot.replaceWith(made.el);
            return made;
          });
          await (await panel).open(text, fromMs, toMs);
        },
      };
      hist = histogram((fromMs, toMs) => {
        range = { from: iso(fromMs), to: iso(toMs) };
        picker.set(range);
        void run(true);
      }, (fromMs, toMs) => void explain.open(filterPart(q), fromMs, toMs));
      const explainRange = h("button", { type: "button", id: "explain-open", title:
        "what sets the records of this range apart from the window before",
        onclick: () => { if (resolved) void explain.open(filterPart(q), resolved.fromMs, resolved.toMs); } }, "Explain");
      const histWrap = h("section", { class: "card hist-card" },
        h("div", { class: "card-head" }, h("h2", null, "Matches over time"),
          h("span", { class: "hint" }, "drag across the chart to zoom in, click a bar or Explain to see what changed"),
          explainRange),
        hist.el);
      const summary = h("p", { class: "result-summary", id: "result-summary", "aria-live": "polite" });
      const head = h("div", { class: "columns-head", id: "columns-head", hidden: true });
      const list = h("ol", { class: "records", id: "results", "aria-label": "records" });
      navigableRows(list);
      const tableBox = h("div", { class: "table-box", id: "agg-box" });
      const sentinel = h("div", { class: "sentinel", id: "more" });
      const patternsBox = h("div", { class: "table-box", id: "patterns" });
      const tab = (name: View, label: string) => h("button", {
        type: "button", role: "tab", class: "tab", id: `tab-${name}`, "aria-controls": "results",
        onclick: () => {
          if (view === name) return;
          view = name;
          void run(true);
        },
      }, label);
      const tabs = { records: tab("records", "Records"), patterns: tab("patterns", "Patterns") };
      const tabBar = h("div", { class: "tabs", role: "tablist" }, tabs.records, tabs.patterns);
      const resultsCard = h("section", { class: "card results-card" },
        tabBar, summary, head, list, tableBox, patternsBox, sentinel);
      const onFilter = (field: string, value: unknown, negate: boolean) => {
        q = addFilter(bar.value(), field, value, negate);
        bar.set(q);
        void run(true);
      };
      let context: { open(record: Row): void } | null = null;
      const openContext = async (record: Row) => {
        if (!context) {
          const made = (await import("../components/context")).contextDialog(onFilter);
          dialogs.append(made.el);
          context = made;
        }
        context.open(record);
      };
      const sidebar = fieldSidebar({
        onFilter,
        columns: () => columns,
        onColumn: (field) => toggleColumn(field),
      });
      root.append(h("div", { class: "page search" },
        h("div", { class: "search-top" }, bar.el, actions), warning, histWrap, explainSlot,
        h("div", { class: "search-body" }, sidebar.el, resultsCard), dialogs));

      const recordActions: RecordActions = { link: recordLink, context: (r) => void openContext(r) };

      // paging state: records older than the last one shown, without repeating ties on its timestamp
      let resolved: Resolved | null = null;
      let lastTs: string | null = null;
      let boundary = new Set<string>();
      let rows: Row[] = [];
      let loading = false;
      let exhausted = true;
      let highlight: RegExp | null = null;
      let matches: number | null = null; // from the histogram: every match in the range
      let elapsed = "";
      let lastFields: FieldsAnswer | null = null;

      function describeRecords() {
        const shown = rows.length;
        const of = matches !== null && matches >= shown ? ` of ${matches.toLocaleString("en")}` : "";
        summary.textContent = shown === 0
          ? "No records match in this range."
          : `${shown}${of} records shown, newest first${elapsed}${exhausted ? "" : ", scroll for more"}`;
      }

      function drawHead() {
        clear(head);
        head.hidden = !columns.length || view !== "records";
        if (head.hidden) return;
        head.append(h("span", { class: "ts" }, "time"), h("span", { class: "level-col" }, "level"),
          ...columns.map((c) => h("span", { class: "cell", "data-col": c }, c,
            h("button", { type: "button", class: "mini col-remove", title: `remove the ${c} column`,
              "aria-label": `remove the ${c} column`, onclick: () => toggleColumn(c) }, "×"))));
      }

      /** A field shown as a column, or no longer; the rows are drawn again from memory. */
      function toggleColumn(field: string) {
        columns = columns.includes(field) ? columns.filter((c) => c !== field) : [...columns, field];
        reflect(searchUrl(q, range, view, { cols: columns, agg }), false);
        redrawRecords();
      }

      function item(row: Row) {
        return recordItem(row, onFilter, highlight, { columns, actions: recordActions });
      }

      function redrawRecords() {
        drawHead();
        clear(list);
        const frag = document.createDocumentFragment();
        for (const row of rows) frag.append(item(row));
        list.append(frag);
        ensureTabStop(list);
        if (lastFields) sidebar.show(lastFields);
      }

      function addRecords(batch: Row[]) {
        const frag = document.createDocumentFragment();
        for (const row of batch) {
          const ts = String(row.timestamp ?? "");
          const key = JSON.stringify(row);
          if (ts === lastTs && boundary.has(key)) continue;
          if (ts !== lastTs) {
            lastTs = ts;
            boundary = new Set();
          }
          boundary.add(key);
          rows.push(row);
          frag.append(item(row));
        }
        list.append(frag);
        ensureTabStop(list);
        if (openFirst) {
          openFirst = false;
          (list.querySelector("li > .summary") as HTMLElement | null)?.click();
        }
      }

      async function loadMore() {
        if (loading || exhausted || !resolved || !lastTs) return;
        loading = true;
        const signal = controller?.signal;
        try {
          const answer = await runQuery(q, apiBounds(range, resolved).from, nextNanosecond(lastTs), PAGE_SIZE, signal);
          const before = rows.length;
          addRecords(answer.rows);
          exhausted = answer.rows.length < PAGE_SIZE || rows.length === before;
          describeRecords();
        } catch (err) {
          if ((err as Error).name !== "AbortError") summary.textContent = `Could not load more: ${(err as Error).message}`;
        } finally {
          loading = false;
        }
        if (!exhausted && sentinelVisible()) void loadMore();
      }

      function sentinelVisible(): boolean {
        const rect = sentinel.getBoundingClientRect();
        return rect.top < window.innerHeight + 200;
      }

      async function drawHistogram(r: Resolved, signal: AbortSignal) {
        if (!hist) return;
        const span = pickSpan(r);
        const text = `${q} | timechart span=${spanText(span)} count() by level`;
        try {
          const answer = await runQuery(text, iso(r.fromMs), iso(r.toMs), null, signal);
          histWrap.hidden = false;
          const data = bucketize(answer.rows, r, span);
          matches = data.total;
          hist.draw(data, r);
        } catch {
          // a query whose pipes end in a table has no histogram of records; the main answer (or
          // its error, shown at the query box) says why
          histWrap.hidden = true;
        }
      }

      function showWarnings(unknown: UnknownField[]) {
        clear(warning);
        warning.hidden = !unknown.length;
        for (const u of unknown) {
          const p = h("p", { "data-field": u.field }, "No record in this range has the field ", h("code", null, u.field), ".");
          if (u.suggestions.length) {
            p.append(" Did you mean ");
            u.suggestions.forEach((s, i) => {
              if (i) p.append(i === u.suggestions.length - 1 ? " or " : ", ");
              p.append(h("button", { type: "button", class: "link did-you-mean", "data-suggestion": s,
                onclick: () => {
                  const fixed = u.position !== null ? replaceField(q, u.position, u.field, s) : q;
                  q = fixed === q ? q.split(`${u.field}:`).join(`${s}:`) : fixed;
                  bar.set(q);
                  void run(true);
                } }, s));
            });
            p.append("?");
          }
          warning.append(p);
        }
      }

      async function loadFields(r: Resolved, signal: AbortSignal) {
        sidebar.loading();
        try {
          const answer = await fetchFields({ q, ...apiBounds(range, r) }, signal);
          if (signal.aborted) return;
          lastFields = answer;
          sidebar.show(answer);
          showWarnings(answer.unknown);
        } catch (err) {
          if ((err as Error).name !== "AbortError") sidebar.fail(`Fields: ${(err as Error).message}`);
        }
      }

      async function showPatterns(r: Resolved, signal: AbortSignal) {
        const base = filterPart(q);
        let answer: QueryAnswer;
        try {
          answer = await runQuery(`${base} | patterns`, iso(r.fromMs), iso(r.toMs), 1000, signal);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          summary.textContent = "";
          bar.showError(err, q);
          return;
        }
        const dropped = base !== q.trim() && q.trim() !== "" ? " (the query's pipes are left out)" : "";
        summary.textContent = answer.rows.length === 0
          ? "No patterns: no records match in this range."
          : `${answer.rows.length} patterns of the matching records, most frequent first${dropped}; ` +
            "click one to see its records";
        patternsBox.append(patternsTable(answer.rows, (row) => {
          q = addFilter(base, "pattern_id", String(row.pattern_id ?? ""), false);
          bar.set(q);
          view = "records";
          void run(true);
        }));
      }

      async function showAggregate(answer: QueryAnswer, r: Resolved, signal: AbortSignal) {
        const { aggChart } = await import("../components/aggchart");
        if (signal.aborted) return;
        chart?.destroy();
        clear(tableBox);
        chart = aggChart(answer, q, r, agg, (v) => {
          agg = v;
          reflect(searchUrl(q, range, view, { cols: columns, agg }), false);
          void showAggregate(answer, r, signal);
        });
        tableBox.append(chart.el);
      }

      async function run(push: boolean) {
        controller?.abort();
        controller = new AbortController();
        const signal = controller.signal;
        bar.clearError();
        reflect(searchUrl(q, range, view, { cols: columns, agg }), push);
        if (q.trim() && q.trim() !== "*") remember("queries", q);
        resolved = resolve(range);
        chart?.destroy();
        chart = null;
        rows = [];
        clear(list);
        clear(tableBox);
        clear(patternsBox);
        drawHead();
        for (const [name, el] of Object.entries(tabs)) el.setAttribute("aria-selected", String(name === view));
        lastTs = null;
        boundary = new Set();
        exhausted = true;
        matches = null;
        elapsed = "";
        if (!resolved) {
          summary.textContent = "The time range is not valid.";
          return;
        }
        highlight = highlightPattern(q);
        resultsCard.hidden = false;
        summary.textContent = "Searching…";
        const r = resolved;
        const histDone = drawHistogram(r, signal);
        const fieldsDone = loadFields(r, signal);
        if (view === "patterns") {
          await showPatterns(r, signal);
          await Promise.all([histDone, fieldsDone]);
          return;
        }
        let answer: QueryAnswer;
        try {
          const bounds = apiBounds(range, r);
          answer = await runQuery(q, bounds.from, bounds.to, PAGE_SIZE, signal);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          summary.textContent = "";
          resultsCard.hidden = true;
          bar.showError(err, q);
          return;
        }
        lastKind = answer.kind;
        if (answer.kind === "records") {
          addRecords(answer.rows);
          // only a plain filter pages by time; a pipeline (sort, limit, dedup) is shown as answered
          exhausted = answer.rows.length < PAGE_SIZE || pipeIndex(q) >= 0;
          elapsed = ` (${answer.stats.elapsed_ms.toFixed(0)} ms)`;
          describeRecords();
        } else {
          await showAggregate(answer, r, signal);
          summary.textContent = `${answer.rows.length} rows (${answer.kind})`;
        }
        await histDone;
        if (signal.aborted) return;
        if (answer.kind === "records") describeRecords();
        if (!exhausted && sentinelVisible()) void loadMore();
      }

      // j/k (or the arrows) from anywhere but a text field start at the first row
      onKey = (ev: KeyboardEvent) => {
        const target = ev.target as HTMLElement;
        if (target.closest("input, textarea, select, [contenteditable], dialog, .summary")) return;
        if (ev.ctrlKey || ev.metaKey || ev.altKey || !(ev.key === "j" || ev.key === "k")) return;
        const first = list.querySelector<HTMLElement>(":scope > li > .summary[tabindex='0']") ??
          list.querySelector<HTMLElement>(":scope > li > .summary");
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      };
      document.addEventListener("keydown", onKey);
      observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) void loadMore();
      }, { rootMargin: "200px" });
      observer.observe(sentinel);
      void run(false);
    },
    unmount() {
      controller?.abort();
      observer?.disconnect();
      hist?.destroy();
      chart?.destroy();
      if (onKey) document.removeEventListener("keydown", onKey);
    },
  };
}
