// Search: query box, time picker, histogram by level (drag to zoom), newest-first records with
// infinite scroll, expandable rows, and a Patterns tab (the message templates of the matches).
// The URL holds the query, the range and the tab, so a search can be shared.

import { type QueryAnswer, type Row, runQuery } from "../api";
import { bucketize, histogram } from "../components/histogram";
import { patternsTable } from "../components/patterns";
import { queryBar } from "../components/querybar";
import { recordItem, tableView } from "../components/records";
import { timePicker } from "../components/timepicker";
import { clear, h } from "../dom";
import { addFilter, highlightPattern, pipeIndex } from "../querytext";
import { type Page, reflect } from "../router";
import {
  DEFAULT_RANGE, iso, nextNanosecond, pickSpan, type Resolved, resolve, spanText, type TimeRange,
} from "../timerange";

const PAGE_SIZE = 100;

type View = "records" | "patterns";

export function searchUrl(q: string, range: TimeRange, view: View = "records"): string {
  const p = new URLSearchParams({ q, from: range.from, to: range.to });
  if (view !== "records") p.set("view", view);
  return `/ui/search?${p}`;
}

/** The filter part of a query (patterns are mined from records, so a pipeline's pipes are left out). */
function filterPart(q: string): string {
  const cut = pipeIndex(q);
  return (cut < 0 ? q : q.slice(0, cut)).trim() || "*";
}

export function searchPage(): Page {
  let controller: AbortController | null = null;
  let observer: IntersectionObserver | null = null;
  let hist: ReturnType<typeof histogram> | null = null;

  return {
    mount(root, url) {
      const params = url.searchParams;
      let q = params.get("q") ?? "*";
      let range: TimeRange = {
        from: params.get("from") ?? DEFAULT_RANGE.from,
        to: params.get("to") ?? DEFAULT_RANGE.to,
      };
      let view: View = params.get("view") === "patterns" ? "patterns" : "records";
      document.title = "Search · logharbor";

      const bar = queryBar(q, (text) => {
        q = text;
        void run(true);
      });
      const picker = timePicker(range, (r) => {
        range = r;
        void run(true);
      });
      bar.extra.append(picker.el);
      hist = histogram((fromMs, toMs) => {
        range = { from: iso(fromMs), to: iso(toMs) };
        picker.set(range);
        void run(true);
      });
      const histWrap = h("section", { class: "card hist-card" },
        h("div", { class: "card-head" }, h("h2", null, "Matches over time"),
          h("span", { class: "hint" }, "drag across the chart to zoom in")),
        hist.el);
      const summary = h("p", { class: "result-summary", id: "result-summary", "aria-live": "polite" });
      const list = h("ol", { class: "records", id: "results" });
      const tableBox = h("div", { class: "table-box" });
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
        tabBar, summary, list, tableBox, patternsBox, sentinel);
      root.append(h("div", { class: "page search" }, bar.el, histWrap, resultsCard));

      const onFilter = (field: string, value: unknown, negate: boolean) => {
        q = addFilter(bar.value(), field, value, negate);
        bar.set(q);
        void run(true);
      };

      // paging state: records older than the last one shown, without repeating ties on its timestamp
      let resolved: Resolved | null = null;
      let lastTs: string | null = null;
      let boundary = new Set<string>();
      let shown = 0;
      let loading = false;
      let exhausted = true;
      let highlight: RegExp | null = null;
      let matches: number | null = null; // from the histogram: every match in the range
      let elapsed = "";

      function describeRecords() {
        const of = matches !== null && matches >= shown ? ` of ${matches.toLocaleString("en")}` : "";
        summary.textContent = shown === 0
          ? "No records match in this range."
          : `${shown}${of} records shown, newest first${elapsed}${exhausted ? "" : ", scroll for more"}`;
      }

      function addRecords(rows: Row[]) {
        const frag = document.createDocumentFragment();
        for (const row of rows) {
          const ts = String(row.timestamp ?? "");
          const key = JSON.stringify(row);
          if (ts === lastTs && boundary.has(key)) continue;
          if (ts !== lastTs) {
            lastTs = ts;
            boundary = new Set();
          }
          boundary.add(key);
          frag.append(recordItem(row, onFilter, highlight));
          shown++;
        }
        list.append(frag);
      }

      async function loadMore() {
        if (loading || exhausted || !resolved || !lastTs) return;
        loading = true;
        const signal = controller?.signal;
        try {
          const answer = await runQuery(q, iso(resolved.fromMs), nextNanosecond(lastTs), PAGE_SIZE, signal);
          const before = shown;
          addRecords(answer.rows);
          exhausted = answer.rows.length < PAGE_SIZE || shown === before;
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

      async function run(push: boolean) {
        controller?.abort();
        controller = new AbortController();
        const signal = controller.signal;
        bar.clearError();
        reflect(searchUrl(q, range, view), push);
        resolved = resolve(range);
        clear(list);
        clear(tableBox);
        clear(patternsBox);
        for (const [name, el] of Object.entries(tabs)) el.setAttribute("aria-selected", String(name === view));
        lastTs = null;
        boundary = new Set();
        shown = 0;
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
        if (view === "patterns") {
          await showPatterns(r, signal);
          await histDone;
          return;
        }
        let answer: QueryAnswer;
        try {
          answer = await runQuery(q, iso(r.fromMs), iso(r.toMs), PAGE_SIZE, signal);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          summary.textContent = "";
          resultsCard.hidden = true;
          bar.showError(err, q);
          return;
        }
        if (answer.kind === "records") {
          addRecords(answer.rows);
          // only a plain filter pages by time; a pipeline (sort, limit, dedup) is shown as answered
          exhausted = answer.rows.length < PAGE_SIZE || pipeIndex(q) >= 0;
          elapsed = ` (${answer.stats.elapsed_ms.toFixed(0)} ms)`;
          describeRecords();
        } else {
          tableBox.append(tableView(answer.columns, answer.rows));
          summary.textContent = `${answer.rows.length} rows (${answer.kind})`;
        }
        await histDone;
        if (signal.aborted) return;
        if (answer.kind === "records") describeRecords();
        if (!exhausted && sentinelVisible()) void loadMore();
      }

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
    },
  };
}
