// Service health: per service, request rate, error ratio and p50/p95/p99 latency over the chosen
// range, each number a link to the search behind it.
//
// The numbers come from GET /api/v1/services (per service and source; long ranges read its
// per-minute recording); on a server without that endpoint the same numbers come from `stats`
// over the records that carry an HTTP status. The charts are `timechart` queries either way.
// Each service also lists its new and changed message patterns of the last hour
// (`| patterns compare 1h`: this hour against the one before).

import { ApiError, getJSON, num, type QueryAnswer, runQuery, type Row } from "../api";
import { type LineChart, lineChart } from "../components/linechart";
import { clockSection } from "../components/clocks";
import { patternChanges } from "../components/patterns";
import { timePicker } from "../components/timepicker";
import { clear, h } from "../dom";
import { quoteValue } from "../querytext";
import { link, navigate, type Page, reflect } from "../router";
import { bucketRate, secondsText } from "../buckets";
import { searchUrl } from "../searchurl";
import { DEFAULT_RANGE, formatTime, iso, pickSpan, resolve, spanText, type TimeRange } from "../timerange";

const REQUESTS = "status:>0";
const PATTERN_HOUR: TimeRange = { from: "now-1h", to: "now" };
const PATTERNS_SHOWN = 10; // per service; the rest are a click away in search's Patterns tab
const ERRORS = "status:>=500";

interface Health {
  service: string;
  source: string;
  requests: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Requests per second over the active part of the range (the server's `rate_per_s`), or over
   * the whole range on a server that does not say (`activeFromMs` null then). */
  rate: number | null;
  activeFromMs: number | null;
  activeToMs: number | null;
}

interface ServicesAnswer {
  services: { service: string; source: string; requests: number; errors: number; p50_ms: number | null;
    p95_ms: number | null; p99_ms: number | null; rate_per_s?: number; active_from_ns?: number;
    active_to_ns?: number }[];
}

/** Per-service numbers from /api/v1/services, or null when this server has no such endpoint. */
async function fromServicesApi(from: string, to: string, signal: AbortSignal): Promise<Health[] | null> {
  try {
    const answer = await getJSON<ServicesAnswer>(`/api/v1/services?${new URLSearchParams({ from, to })}`, signal);
    return answer.services.map((s) => ({
      service: s.service, source: s.source, requests: s.requests, errors: s.errors,
      p50: num(s.p50_ms), p95: num(s.p95_ms), p99: num(s.p99_ms),
      // a server from before the active rate: its rate_per_s is over the range, the page divides
      rate: s.active_from_ns === undefined ? null : num(s.rate_per_s),
      activeFromMs: s.active_from_ns === undefined ? null : s.active_from_ns / 1e6,
      activeToMs: s.active_to_ns === undefined ? null : s.active_to_ns / 1e6,
    }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/** The same numbers from the query language, for servers without /api/v1/services. */
async function fromQueries(from: string, to: string, pcts: string, signal: AbortSignal): Promise<Health[]> {
  const [totals, errors]: QueryAnswer[] = await Promise.all([
    runQuery(`${REQUESTS} | stats count() as requests, ${pcts} by service, source`, from, to, null, signal),
    runQuery(`${ERRORS} | stats count() as errors by service, source`, from, to, null, signal),
  ]);
  const key = (row: Row) => `${row.service}\u0000${row.source}`;
  const errorsBy = new Map(errors.rows.map((row) => [key(row), Number(row.errors)]));
  return totals.rows.map((row) => ({
    service: String(row.service), source: String(row.source ?? ""), requests: Number(row.requests),
    errors: errorsBy.get(key(row)) ?? 0, p50: num(row.p50), p95: num(row.p95), p99: num(row.p99),
    rate: null, activeFromMs: null, activeToMs: null,
  }));
}

/** A rate for reading: two decimals below 100, whole numbers above. */
const rateText = (v: number) => (v >= 100 ? Math.round(v).toLocaleString("en") : v.toFixed(2));

/** The rate cell: its title says over which time it is, and what the whole range's average is. */
function rateCell(s: Health, rangeSeconds: number, content: Node): HTMLElement {
  const cell = h("td", { class: "num rate", "data-rate": String(s.rate ?? s.requests / rangeSeconds) }, content);
  if (s.activeFromMs !== null && s.activeToMs !== null) {
    const secs = (s.activeToMs - s.activeFromMs) / 1000;
    cell.dataset.activeSeconds = String(secs);
    cell.title = `${s.requests} requests over ${secondsText(secs)} (${formatTime(s.activeFromMs)} – ` +
      `${formatTime(s.activeToMs)}); ${rateText(s.requests / rangeSeconds)}/s averaged over the whole range`;
  } else {
    cell.title = `${s.requests} requests over the whole range (${secondsText(rangeSeconds)})`;
  }
  return cell;
}

export function servicesPage(): Page {
  let controller: AbortController | null = null;
  let charts: LineChart[] = [];
  return {
    mount(root, url) {
      document.title = "Services · logharbor";
      let range: TimeRange = {
        from: url.searchParams.get("from") ?? DEFAULT_RANGE.from,
        to: url.searchParams.get("to") ?? DEFAULT_RANGE.to,
      };
      const picker = timePicker(range, (r) => {
        range = r;
        void load(true);
      });
      const body = h("div", { class: "services", id: "services" });
      const refresh = h("button", { type: "button", onclick: () => void load(false) }, "Refresh");
      root.append(h("div", { class: "page" },
        h("div", { class: "toolbar" }, h("h1", null, "Service health"), picker.el, refresh),
        body));

      async function load(push: boolean) {
        controller?.abort();
        controller = new AbortController();
        const signal = controller.signal;
        reflect(`/ui/services?${new URLSearchParams({ from: range.from, to: range.to })}`, push);
        charts.forEach((c) => c.destroy());
        charts = [];
        clear(body);
        const r = resolve(range);
        if (!r) {
          body.append(h("p", { class: "form-error" }, "The time range is not valid."));
          return;
        }
        body.append(h("p", { class: "hint" }, "Loading…"));
        const span = pickSpan(r, 60);
        const from = iso(r.fromMs);
        const to = iso(r.toMs);
        const pcts = "p50(duration_ms) as p50, p95(duration_ms) as p95, p99(duration_ms) as p99";
        let health: Health[];
        let series: QueryAnswer;
        let errSeries: QueryAnswer;
        try {
          const tc = `timechart span=${spanText(span)}`;
          const [api, a, b] = await Promise.all([
            fromServicesApi(from, to, signal),
            runQuery(`${REQUESTS} | ${tc} count() as n, ${pcts} by service`, from, to, null, signal),
            runQuery(`${ERRORS} | ${tc} count() as n by service`, from, to, null, signal),
          ]);
          health = api ?? (await fromQueries(from, to, pcts, signal));
          series = a;
          errSeries = b;
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          clear(body);
          body.append(h("p", { class: "form-error" }, (err as Error).message));
          return;
        }
        clear(body);
        const cards = new Map<string, HTMLElement>();
        health.sort((x, y) => y.requests - x.requests || x.service.localeCompare(y.service));
        if (!health.length) {
          body.append(h("p", { class: "hint" }, "No HTTP records (with a status) in this range."));
          return;
        }
        const seconds = (r.toMs - r.fromMs) / 1000;
        const spanMs = span * 1000;
        const first = Math.floor(r.fromMs / spanMs) * spanMs;
        const n = Math.max(1, Math.ceil((r.toMs - first) / spanMs));
        const x = Array.from({ length: n }, (_, i) => (first + i * spanMs) / 1000);
        const grid = (rows: Row[], service: string, col: string): (number | null)[] => {
          const out: (number | null)[] = new Array(n).fill(null);
          for (const row of rows) {
            if (String(row.service) !== service) continue;
            const i = Math.floor((Date.parse(String(row._time)) - first) / spanMs);
            if (i >= 0 && i < n) out[i] = num(row[col]);
          }
          return out;
        };
        const active = health.some((s) => s.activeFromMs !== null);
        const rateHead = active ? "rate /s (active)" : "rate /s (range avg)";
        const rateTip = active
          ? "Requests per second while the service was active: its requests divided by the time from the " +
            "start of the minute of its first request to the end of the minute of its last one, inside the range."
          : "Requests per second averaged over the whole range (this server does not say when each service was active).";
        const table = h("table", { class: "grid health", id: "health-table" },
          h("thead", null, h("tr", null, ["service", "source", "requests", rateHead, "errors (5xx)", "error ratio",
            "p50", "p95", "p99"].map((c) => h("th", {
            class: c === "service" || c === "source" ? "" : "num",
            title: c === rateHead ? rateTip : null, id: c === rateHead ? "rate-head" : null,
          }, c)))),
          h("tbody", null, health.map((s) => {
            const svc = `service:${quoteValue(s.service)}`;
            const go = (q: string, text: string) => link(searchUrl(q, range), text);
            const latency = (v: number | null) =>
              v === null ? "—" : go(`${svc} AND duration_ms:>=${Math.floor(v * 1000) / 1000}`, `${v.toFixed(1)} ms`);
            return h("tr", { "data-service": s.service, "data-source": s.source },
              h("td", null, go(svc, s.service)),
              h("td", null, s.source),
              h("td", { class: "num" }, go(`${svc} AND ${REQUESTS}`, String(s.requests))),
              rateCell(s, seconds, go(`${svc} AND ${REQUESTS}`, rateText(s.rate ?? s.requests / seconds))),
              h("td", { class: "num" }, go(`${svc} AND ${ERRORS}`, String(s.errors))),
              h("td", { class: `num${s.errors / Math.max(s.requests, 1) > 0.05 ? " bad" : ""}` },
                go(`${svc} AND ${ERRORS}`, `${((s.errors / Math.max(s.requests, 1)) * 100).toFixed(2)} %`)),
              h("td", { class: "num" }, latency(s.p50)),
              h("td", { class: "num" }, latency(s.p95)),
              h("td", { class: "num" }, latency(s.p99)));
          })));
        // wider than a phone: the table scrolls inside its card, the page never sideways
        body.append(h("section", { class: "card" }, h("div", { class: "table-box" }, table)));
        // each host's and instance's clock offset, under the table (it loads on its own)
        const clockSlot = h("div", { id: "clocks-slot" });
        body.append(clockSlot);
        void clockSection(signal).then((el) => (el ? clockSlot.replaceWith(el) : clockSlot.remove()),
          () => clockSlot.remove());
        const range2: [number, number] = [r.fromMs / 1000, r.toMs / 1000];
        for (const s of health.filter((x, i) => health.findIndex((y) => y.service === x.service) === i)) {
          const counts = grid(series.rows, s.service, "n");
          const errs = grid(errSeries.rows, s.service, "n");
          // per second of the time each bucket covers: the last one, still filling, is not a drop
          const rate = counts.map((c, i) => bucketRate(c ?? 0, x[i], span, r.fromMs, r.toMs) ?? 0);
          const ratio = counts.map((c, i) => (c ? ((errs[i] ?? 0) / c) * 100 : null));
          // a click on a chart opens the records of that service in that interval
          const svc = `service:${quoteValue(s.service)}`;
          const pick = (q: string) => (t: number) =>
            navigate(searchUrl(q, { from: iso(t * 1000), to: iso((t + span) * 1000) }));
          const made = [
            lineChart("Requests / s", "/s", x, [{ label: "rate", color: "#2563eb", values: rate }], range2,
              pick(`${svc} AND ${REQUESTS}`), 140, span),
            lineChart("Error ratio (5xx)", " %", x, [{ label: "errors", color: "#dc2626", values: ratio }], range2,
              pick(`${svc} AND ${ERRORS}`), 140, span),
            lineChart("Latency", " ms", x, [
              { label: "p50", color: "#16a34a", values: grid(series.rows, s.service, "p50") },
              { label: "p95", color: "#d97706", values: grid(series.rows, s.service, "p95") },
              { label: "p99", color: "#dc2626", values: grid(series.rows, s.service, "p99") },
            ], range2, pick(`${svc} AND ${REQUESTS}`), 140, span),
          ];
          charts.push(...made);
          const card = h("section", { class: "card service-card", "data-service": s.service },
            h("div", { class: "card-head" }, h("h2", null, s.service),
              link(searchUrl(`service:${quoteValue(s.service)}`, range), "search this service →")),
            h("div", { class: "charts" }, made.map((c) => c.el)));
          cards.set(s.service, card);
          body.append(card);
        }
        await showPatternChanges(cards, signal);
      }

      /** Under each service's charts, its new and changed patterns of the last hour. */
      async function showPatternChanges(cards: Map<string, HTMLElement>, signal: AbortSignal) {
        const hour = resolve(PATTERN_HOUR);
        if (!hour) return;
        let answer: QueryAnswer;
        try {
          answer = await runQuery("* | patterns compare 1h", iso(hour.fromMs), iso(hour.toMs), 1000, signal);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          return; // a server without pattern mining: the page shows the rest as before
        }
        const byService = new Map<string, Row[]>();
        for (const row of answer.rows) {
          if (row.status !== "new" && row.status !== "changed") continue;
          const service = String(row.service ?? "");
          byService.set(service, [...(byService.get(service) ?? []), row]);
        }
        for (const service of [...byService.keys()].sort()) {
          if (cards.has(service)) continue; // a service without HTTP records: a card of its own
          const card = h("section", { class: "card service-card", "data-service": service },
            h("div", { class: "card-head" }, h("h2", null, service),
              link(searchUrl(`service:${quoteValue(service)}`, range), "search this service →")));
          cards.set(service, card);
          body.append(card);
        }
        for (const [service, card] of cards) {
          const rows = byService.get(service) ?? [];
          const svc = `service:${quoteValue(service)}`;
          const linkTo = (row: Row, text: Node) =>
            link(searchUrl(`${svc} AND pattern_id:${quoteValue(String(row.pattern_id ?? ""))}`, PATTERN_HOUR), text);
          const more = rows.length > PATTERNS_SHOWN
            ? h("p", { class: "hint" }, `${rows.length - PATTERNS_SHOWN} more: `,
              link(searchUrl(svc, PATTERN_HOUR, "patterns"), "every pattern of the last hour →"))
            : null;
          card.append(h("div", { class: "service-patterns", "data-service": service },
            h("h3", null, "New and changed patterns, last hour"),
            rows.length
              ? h("div", { class: "table-box" }, patternChanges(rows.slice(0, PATTERNS_SHOWN), linkTo))
              : h("p", { class: "hint" }, "No new or changed patterns in the last hour."),
            more));
        }
      }
      void load(false);
    },
    unmount() {
      controller?.abort();
      charts.forEach((c) => c.destroy());
    },
  };
}
