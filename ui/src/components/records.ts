// One log record as a row: a summary line (or the chosen columns) that opens to every field, as a
// table or as JSON, with copy, a link to the record, its surrounding records and its trace; a
// click on a field's value refines the query (`field:value`, or `NOT field:value` with −).
// A list of rows is one Tab stop: arrow keys or j/k move between rows, Enter opens one.

import { ExactNumber, isScalar, jsonText, num, type Row } from "../api";
import { h, highlighted } from "../dom";
import { recordFields, valueAt } from "../fieldnames";
import { link } from "../router";
import { formatTime, formatTimestamp, splitTimestamp } from "../timerange";

export type OnFilter = (field: string, value: unknown, negate: boolean) => void;

/** What an opened record offers beyond its fields (search gives all of it; other pages none). */
export interface RecordActions {
  /** The address of this record (a search that finds it and opens it). */
  link(record: Row): string;
  /** Show the records around it in time. */
  context(record: Row): void;
}

export interface RecordOptions {
  columns?: string[];
  actions?: RecordActions | null;
}

export { valueAt };

export function levelBadge(level: unknown): HTMLElement {
  const text = String(level ?? "").toUpperCase() || "—";
  return h("span", { class: `level level-${text.toLowerCase()}` }, text);
}

export function recordTime(ts: unknown): string {
  if (typeof ts !== "string") return "";
  return formatTime(splitTimestamp(ts).ms, true);
}

/** A row's time: the date part can be hidden on a narrow screen, the time of day stays. */
function timeCell(ts: unknown): HTMLElement {
  const text = recordTime(ts);
  const cut = text.indexOf(" ");
  return cut < 0 ? h("span", { class: "ts" }, text)
    : h("span", { class: "ts", title: text }, h("span", { class: "ts-date" }, text.slice(0, cut + 1)), text.slice(cut + 1));
}

export function valueText(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof ExactNumber) return value.text;
  if (typeof value === "object") return jsonText(value);
  return String(value);
}

function httpSummary(record: Row): string {
  const http = record.http as Row | undefined;
  if (!http || typeof http !== "object") return "";
  const parts: string[] = [];
  if (http.status !== undefined) parts.push(String(http.status));
  const ms = num(http.duration_ms);
  if (ms !== null) parts.push(`${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
  return parts.join(" · ");
}

function fieldsTable(record: Row, onFilter: OnFilter): HTMLElement {
  const rows = recordFields(record).map(({ name: field, value }) => {
    const text = field === "timestamp" || field === "observed_timestamp"
      ? formatTimestamp(String(value)) : valueText(value);
    // an object here is an empty one ({}): no value to filter on
    const filterable = field !== "timestamp" && field !== "observed_timestamp" && isScalar(value);
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

/** Put text on the clipboard (the async API, or a selected textarea where it is not allowed). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function details(record: Row, onFilter: OnFilter, actions: RecordActions | null | undefined): HTMLElement {
  const table = fieldsTable(record, onFilter);
  const json = h("pre", { class: "json", hidden: true }, jsonText(record, 2));
  const status = h("span", { class: "hint copy-status", role: "status" });
  const tab = (name: string, label: string, panel: HTMLElement, other: HTMLElement) => {
    const b = h("button", { type: "button", role: "tab", class: "tab", "data-tab": name,
      "aria-selected": String(!panel.hidden) }, label);
    b.addEventListener("click", (ev) => {
      ev.stopPropagation();
      panel.hidden = false;
      other.hidden = true;
      b.parentElement?.querySelectorAll("[role=tab]").forEach((t) => t.setAttribute("aria-selected", String(t === b)));
    });
    return b;
  };
  const copy = (label: string, action: string, text: () => string) => h("button", {
    type: "button", class: "mini", "data-action": action,
    onclick: async (ev: Event) => {
      ev.stopPropagation();
      status.textContent = (await copyText(text())) ? `${label} copied.` : "The browser refused to copy.";
    },
  }, label === "JSON" ? "Copy JSON" : "Copy link");
  const bar = h("div", { class: "record-bar" },
    h("div", { class: "tabs", role: "tablist" }, tab("table", "Table", table, json), tab("json", "JSON", json, table)),
    copy("JSON", "copy-json", () => jsonText(record, 2)));
  if (actions) {
    bar.append(
      copy("Link", "copy-link", () => new URL(actions.link(record), location.origin).toString()),
      h("button", { type: "button", class: "mini", "data-action": "context",
        onclick: (ev: Event) => {
          ev.stopPropagation();
          actions.context(record);
        } }, "Surrounding records"));
  }
  const id = typeof record.trace_id === "string" && record.trace_id ? record.trace_id
    : typeof record.request_id === "string" ? record.request_id : "";
  if (id) bar.append(link(`/ui/trace/${encodeURIComponent(id)}`, "Open trace →", "open-trace"));
  bar.append(status);
  return h("div", { class: "details" }, bar, table, json);
}

/** A record as a list item; `re` highlights matched words in the message. */
export function recordItem(record: Row, onFilter: OnFilter, re: RegExp | null = null,
  options: RecordOptions = {}): HTMLElement {
  const columns = options.columns ?? [];
  const message = String(record.message ?? "");
  const extra = columns.length ? "" : httpSummary(record);
  const cells = columns.length
    ? columns.map((c) => {
        const v = valueAt(record, c);
        const text = v === undefined ? "" : valueText(v);
        return h("span", { class: "cell", "data-col": c, title: text },
          c === "message" ? highlighted(text, re) : text);
      })
    : [h("span", { class: "svc" }, String(record.service ?? "")), h("span", { class: "msg" }, highlighted(message, re))];
  const summary = h(
    "div",
    { class: `summary${columns.length ? " with-columns" : ""}`, role: "button", tabindex: "-1", "aria-expanded": "false" },
    timeCell(record.timestamp),
    levelBadge(record.level),
    cells,
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
      open = details(record, onFilter, options.actions);
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

/** The row that takes the Tab stop of a list: the focused one, else the first. */
export function ensureTabStop(list: HTMLElement): void {
  const rows = list.querySelectorAll<HTMLElement>(":scope > li > .summary");
  if (!rows.length) return;
  if (![...rows].some((r) => r.tabIndex === 0)) rows[0].tabIndex = 0;
}

/**
 * Make a list of records one Tab stop: ArrowDown/j and ArrowUp/k move the focus between rows,
 * Home/End to the first and last; Enter/Space (on the row) open it. The focused row keeps the
 * stop, so Tab leaves the list and Shift+Tab comes back to where you were.
 */
export function navigableRows(list: HTMLElement): void {
  list.addEventListener("focusin", (ev) => {
    const row = (ev.target as HTMLElement).closest?.(".summary") as HTMLElement | null;
    if (!row || row.parentElement?.parentElement !== list) return;
    list.querySelectorAll<HTMLElement>(":scope > li > .summary").forEach((r) => { r.tabIndex = r === row ? 0 : -1; });
  });
  list.addEventListener("keydown", (ev) => {
    const row = (ev.target as HTMLElement).closest?.(".summary") as HTMLElement | null;
    if (!row || row !== ev.target || row.parentElement?.parentElement !== list) return;
    const rows = [...list.querySelectorAll<HTMLElement>(":scope > li > .summary")];
    const i = rows.indexOf(row);
    let next = -1;
    if (ev.key === "ArrowDown" || ev.key === "j") next = Math.min(rows.length - 1, i + 1);
    else if (ev.key === "ArrowUp" || ev.key === "k") next = Math.max(0, i - 1);
    else if (ev.key === "Home") next = 0;
    else if (ev.key === "End") next = rows.length - 1;
    if (next < 0) return;
    ev.preventDefault();
    rows[next].focus();
    rows[next].scrollIntoView({ block: "nearest" });
  });
}

/** A measured number as a person reads it: grouped thousands, at most two decimals (four under
 * 1); one that rounding would hide (5e-324 is not 0, 1e+300 is not 301 digits) as it is. */
export function numberText(v: number, exact: unknown = v): string {
  const a = Math.abs(v);
  return a && (a < 1e-4 || a >= 1e15) ? valueText(exact)
    : v.toLocaleString("en", { maximumFractionDigits: a < 1 ? 4 : 2 });
}

/**
 * Rows of `stats`/`timechart`/`fields` answers as a plain table. Measured numbers are rounded for
 * reading (the exact value is the cell's title); `groups` (the `by` fields: status codes, ports,
 * ids) are shown as they are.
 */
export function tableView(columns: string[], rows: Row[], groups: string[] = []): HTMLElement {
  const numeric = new Set(columns.filter((c) => rows.some((r) => num(r[c]) !== null)));
  const cell = (c: string, v: unknown) => (num(v) !== null && !groups.includes(c) && c !== "_time"
    ? numberText(+(v as number), v) : valueText(v ?? ""));
  return h("table", { class: "grid", id: "table-result" },
    h("thead", null, h("tr", null, columns.map((c) => h("th", { class: numeric.has(c) ? "num" : "" }, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, columns.map((c) =>
      h("td", { class: numeric.has(c) ? "num" : "", title: valueText(r[c] ?? "") }, cell(c, r[c])))))),
  );
}
