// One log record as a row: a summary line that expands to every field; a click on a field's value
// refines the query (`field:value`, or `NOT field:value` with the minus button).

import type { Row } from "../api";
import { h, highlighted } from "../dom";
import { isFilterable } from "../querytext";
import { link } from "../router";
import { formatLocal, splitTimestamp } from "../timerange";

export type OnFilter = (field: string, value: unknown, negate: boolean) => void;


/** Nested objects become dotted paths (`http.status`), the names the query language takes. */
export function flatten(record: Row, prefix = "", out: [string, unknown][] = []): [string, unknown][] {
  for (const [key, value] of Object.entries(record)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      flatten(value as Row, path, out);
    } else {
      out.push([path, value]);
    }
  }
  return out;
}

export function levelBadge(level: unknown): HTMLElement {
  const text = String(level ?? "").toUpperCase() || "—";
  return h("span", { class: `level level-${text.toLowerCase()}` }, text);
}

export function recordTime(ts: unknown): string {
  if (typeof ts !== "string") return "";
  return formatLocal(splitTimestamp(ts).ms, true);
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function httpSummary(record: Row): string {
  const http = record.http as Row | undefined;
  if (!http || typeof http !== "object") return "";
  const parts: string[] = [];
  if (http.status !== undefined) parts.push(String(http.status));
  if (typeof http.duration_ms === "number") parts.push(`${http.duration_ms.toFixed(http.duration_ms < 10 ? 1 : 0)} ms`);
  return parts.join(" · ");
}

function details(record: Row, onFilter: OnFilter): HTMLElement {
  const rows = flatten(record).map(([field, value]) => {
    const text = valueText(value);
    const filterable = isFilterable(field) && field !== "timestamp" && field !== "observed_timestamp" &&
      !Array.isArray(value) && value !== null;
    const long = text.length > 200 || text.includes("\n");
    const shown = long ? h("pre", { class: "long" }, text) : text;
    const valueEl = filterable
      ? h("button", {
          type: "button",
          class: "value",
          title: `add ${field}:… to the query`,
          "data-field": field,
          onclick: (ev: Event) => {
            ev.stopPropagation();
            onFilter(field, value, false);
          },
        }, shown)
      : h("span", { class: "value plain" }, shown);
    const actions = h("span", { class: "actions" });
    if (filterable) {
      actions.append(
        h("button", {
          type: "button", class: "mini", title: "filter for this value", "data-action": "include",
          onclick: (ev: Event) => {
            ev.stopPropagation();
            onFilter(field, value, false);
          },
        }, "+"),
        h("button", {
          type: "button", class: "mini", title: "filter out this value", "data-action": "exclude",
          onclick: (ev: Event) => {
            ev.stopPropagation();
            onFilter(field, value, true);
          },
        }, "−"),
      );
    }
    if ((field === "trace_id" || field === "request_id") && typeof value === "string" && value) {
      actions.append(link(`/ui/trace/${encodeURIComponent(value)}`, "trace →", "trace-link"));
    }
    return h("tr", { "data-field": field }, h("th", null, field), h("td", null, valueEl), h("td", null, actions));
  });
  return h("table", { class: "fields" }, h("tbody", null, rows));
}

/** A record as a list item; `re` highlights matched words in the message. */
export function recordItem(record: Row, onFilter: OnFilter, re: RegExp | null = null): HTMLElement {
  const message = String(record.message ?? "");
  const extra = httpSummary(record);
  const summary = h(
    "div",
    { class: "summary", role: "button", tabindex: "0", "aria-expanded": "false" },
    h("span", { class: "ts" }, recordTime(record.timestamp)),
    levelBadge(record.level),
    h("span", { class: "svc" }, String(record.service ?? "")),
    h("span", { class: "msg" }, highlighted(message, re)),
    extra ? h("span", { class: "http" }, extra) : null,
  );
  const item = h("li", { class: "record", "data-level": String(record.level ?? "") }, summary);
  let open: HTMLElement | null = null;
  const toggle = () => {
    if (open) {
      open.remove();
      open = null;
      summary.setAttribute("aria-expanded", "false");
      item.classList.remove("open");
    } else {
      open = h("div", { class: "details" }, details(record, onFilter));
      item.append(open);
      summary.setAttribute("aria-expanded", "true");
      item.classList.add("open");
    }
  };
  summary.addEventListener("click", toggle);
  summary.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      toggle();
    }
  });
  return item;
}

/** Rows of `stats`/`timechart`/`fields` answers as a plain table. */
export function tableView(columns: string[], rows: Row[]): HTMLElement {
  return h("table", { class: "grid", id: "table-result" },
    h("thead", null, h("tr", null, columns.map((c) => h("th", null, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, columns.map((c) => h("td", null, valueText(r[c] ?? "")))))),
  );
}

