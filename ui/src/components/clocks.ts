// Clock offsets per host and app instance (issue 28), for the Services page: how far each clock
// is ahead of the reference (the ALB), estimated by the server from the requests themselves
// (GET /api/v1/clock/offsets), with the interval the true offset lies in.

import { ApiError, getJSON } from "../api";
import { h } from "../dom";

export interface ClockRow {
  at: string;
  tenant: string;
  clock: string;
  layer: string;
  host: string;
  instance: string;
  service: string;
  reference: string;
  offset_ms: number | null;
  uncertainty_ms: number | null;
  requests: number;
  consistent: boolean;
}

interface OffsetsAnswer {
  window_s: number;
  current: ClockRow[];
  history: ClockRow[];
}

/** An offset is worth a look beyond this (ms), when even its interval's near end is past it. */
export const OFF_MS = 100;

export const offsetText = (c: Pick<ClockRow, "offset_ms" | "uncertainty_ms">): string =>
  c.offset_ms === null
    ? "—"
    : `${c.offset_ms >= 0 ? "+" : "−"}${Math.abs(c.offset_ms).toFixed(1)} ± ${(c.uncertainty_ms ?? 0).toFixed(1)} ms`;

function verdict(c: ClockRow): { text: string; cls: string } {
  if (c.offset_ms === null) return { text: "too few requests", cls: "" };
  if (c.clock === c.reference) return { text: "reference", cls: "" };
  if (!c.consistent) return { text: "bounds disagree", cls: "warn" };
  const least = Math.abs(c.offset_ms) - (c.uncertainty_ms ?? 0);
  if (least > OFF_MS) return { text: "off: NTP?", cls: "bad" };
  if (least > 0) return { text: "skewed", cls: "warn" };
  return { text: "in sync", cls: "" };
}

/** The Clocks card: one row per host (ALB, NGINX) and app instance; empty text when none yet. */
export async function clockSection(signal: AbortSignal): Promise<HTMLElement | null> {
  let answer: OffsetsAnswer;
  try {
    answer = await getJSON<OffsetsAnswer>("/api/v1/clock/offsets?since=1h", signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // an older server
    throw err;
  }
  const rows = [...answer.current].sort((a, b) =>
    a.tenant.localeCompare(b.tenant) || ["alb", "nginx", "app"].indexOf(a.layer) - ["alb", "nginx", "app"].indexOf(b.layer)
      || a.clock.localeCompare(b.clock));
  const reference = rows.find((r) => r.reference)?.reference;
  const head = h("div", { class: "card-head" }, h("h2", null, "Clocks"),
    h("span", { class: "hint" }, reference
      ? `offset from ${reference}'s clock, from the last ${Math.round(answer.window_s / 60)} min of requests`
      : ""));
  if (!rows.length) {
    return h("section", { class: "card clocks", id: "clocks" }, head,
      h("p", { class: "hint" }, "No estimate yet: the server estimates every minute from requests that " +
        "passed through more than one layer (ALB, NGINX, app)."));
  }
  const table = h("table", { class: "grid clocks-table", id: "clocks-table" },
    h("thead", null, h("tr", null, ["clock", "layer", "host", "instance", "offset", "requests", ""].map((c) =>
      h("th", { class: c === "offset" || c === "requests" ? "num" : "" }, c)))),
    h("tbody", null, rows.map((c) => {
      const v = verdict(c);
      return h("tr", { "data-clock": c.clock, "data-layer": c.layer },
        h("td", null, c.clock),
        h("td", null, h("span", { class: `layer-tag layer-${c.layer}` }, c.layer)),
        h("td", null, c.host || "—"),
        h("td", null, c.instance || "—"),
        h("td", { class: `num offset${v.cls ? ` ${v.cls}` : ""}`, title: `estimated ${c.at}` }, offsetText(c)),
        h("td", { class: "num" }, String(c.requests)),
        h("td", { class: `verdict ${v.cls}` }, v.text));
    })));
  return h("section", { class: "card clocks", id: "clocks" }, head, h("div", { class: "table-box" }, table));
}
