// The field sidebar of search: every field of the matching records (canonical, http.*, attribute
// paths) from GET /api/v1/fields, each opening to its top values with their share of the whole
// match; a value adds `field:value` (or `NOT field:value` with −), "+ column" shows the field
// as a column of the results. A filter box narrows a long list of fields.

import { getExactJSON, isScalar, jsonText } from "../api";
import { clear, h } from "../dom";
import { isFilterable } from "../querytext";

export interface FieldValue {
  value: unknown;
  count: number;
}

export interface FieldInfo {
  name: string;
  type: string;
  count: number;
  exact: boolean;
  top: FieldValue[];
}

export interface UnknownField {
  field: string;
  position: number | null;
  suggestions: string[];
}

export interface FieldsAnswer {
  total: number;
  sampled: number;
  exact: boolean;
  fields: FieldInfo[];
  unknown: UnknownField[];
  elapsed_ms: number;
}

export function fetchFields(params: Record<string, string>, signal?: AbortSignal, background = false
): Promise<FieldsAnswer> {
  return getExactJSON<FieldsAnswer>(`/api/v1/fields?${new URLSearchParams(params)}`, signal, background);
}

export interface SidebarHandlers {
  onFilter(field: string, value: unknown, negate: boolean): void;
  onColumn(field: string): void;
  columns(): string[];
}

export interface Sidebar {
  el: HTMLElement;
  loading(): void;
  show(answer: FieldsAnswer): void;
  fail(message: string): void;
}

const TYPE_MARK: Record<string, string> = { string: "t", number: "#", boolean: "b", mixed: "?" };

export function share(count: number, total: number): string {
  if (!total) return "0 %";
  const pct = (count / total) * 100;
  return `${pct >= 10 || pct === 0 ? pct.toFixed(0) : pct < 0.1 ? "<0.1" : pct.toFixed(1)} %`;
}

/** A JSON literal's text (a number, true, false, null): a string that reads so is shown quoted. */
const LITERAL = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)$/;

/**
 * A value as the sidebar and explain list it: values of two JSON types are two values (7 and "7",
 * true and "true", 1 and 1.0 are counted apart), so they read apart: text as itself, quoted when
 * empty or when it reads as a number or a literal; anything else as the JSON text the server wrote
 * (-0.0, 1.0, 5e-324, 18446744073709551617 exactly).
 */
export function valueLabel(value: unknown): string {
  if (typeof value === "string") return value === "" || LITERAL.test(value) ? JSON.stringify(value) : value;
  return value === undefined ? "null" : jsonText(value);
}

export function fieldSidebar(handlers: SidebarHandlers): Sidebar {
  const filter = h("input", { type: "text", id: "field-search", class: "field-search", placeholder: "Filter fields",
    "aria-label": "filter fields", autocomplete: "off", spellcheck: "false" });
  const note = h("p", { class: "hint sidebar-note", id: "fields-note" });
  const list = h("ul", { class: "field-list", id: "fields" });
  const toggle = h("button", { type: "button", class: "sidebar-toggle", id: "fields-toggle", "aria-expanded": "true",
    "aria-controls": "fields-body" }, "Fields");
  const body = h("div", { class: "sidebar-body", id: "fields-body" }, filter, note, list);
  const el = h("aside", { class: "card sidebar", id: "sidebar", "aria-label": "fields" }, toggle, body);
  const open = new Set<string>();
  let answer: FieldsAnswer | null = null;

  const fold = (folded: boolean) => {
    body.hidden = folded;
    toggle.setAttribute("aria-expanded", String(!folded));
  };
  // where the sidebar sits above the results (a narrow screen) it starts folded, so the results
  // come first; it folds again when the window becomes narrow, and opens when it widens
  const narrow = window.matchMedia?.("(max-width: 1000px)");
  if (narrow) {
    fold(narrow.matches);
    narrow.addEventListener("change", (ev) => {
      if (el.isConnected) fold(ev.matches);
    });
  }
  toggle.addEventListener("click", () => fold(!body.hidden));
  filter.addEventListener("input", () => draw());

  function valueRow(field: FieldInfo, v: FieldValue, total: number): HTMLElement {
    const bar = h("span", { class: "fv-bar" });
    bar.style.width = `${Math.min(100, (v.count / Math.max(total, 1)) * 100).toFixed(1)}%`;
    const label = valueLabel(v.value);
    // an integer beyond 2^53, -0.0, 1.0 (ExactNumber) filter too: they were shown but not clickable
    const filterable = isFilterable(field.name) && isScalar(v.value);
    return h("li", { class: "fv", "data-value": label },
      filterable
        ? h("button", { type: "button", class: "fv-value", title: `${field.name}:${label}`,
          onclick: () => handlers.onFilter(field.name, v.value, false) }, label)
        : h("span", { class: "fv-value plain" }, label),
      h("span", { class: "fv-share", title: `${v.count.toLocaleString("en")} of ${total.toLocaleString("en")}` },
        share(v.count, total)),
      h("span", { class: "fv-track" }, bar),
      filterable
        ? h("span", { class: "fv-actions" },
          h("button", { type: "button", class: "mini", "data-action": "include", title: "filter for this value",
            "aria-label": `filter for ${field.name} ${label}`, onclick: () => handlers.onFilter(field.name, v.value, false) },
          "+"),
          h("button", { type: "button", class: "mini", "data-action": "exclude", title: "filter out this value",
            "aria-label": `filter out ${field.name} ${label}`, onclick: () => handlers.onFilter(field.name, v.value, true) },
          "−"))
        : null);
  }

  function fieldItem(field: FieldInfo, total: number): HTMLElement {
    const isOpen = open.has(field.name);
    const columns = handlers.columns();
    const shown = columns.includes(field.name);
    const name = h("button", { type: "button", class: "field-name", "aria-expanded": String(isOpen),
      title: `${field.name}: in ${share(field.count, total)} of the matches${field.exact ? "" : " (estimated)"}` },
    h("span", { class: `field-type type-${field.type}`, "aria-hidden": "true" }, TYPE_MARK[field.type] ?? "?"),
    h("span", { class: "field-label" }, field.name),
    h("span", { class: "field-share" }, `${field.exact ? "" : "≈ "}${share(field.count, total)}`));
    const column = h("button", { type: "button", class: "mini field-column", "aria-pressed": String(shown),
      title: shown ? "remove the column" : "show as a column", onclick: () => handlers.onColumn(field.name) },
    shown ? "− column" : "+ column");
    const item = h("li", { class: `field${shown ? " is-column" : ""}${isOpen ? " open" : ""}`, "data-field": field.name },
      h("div", { class: "field-head" }, name, column));
    if (isOpen) {
      const values = h("ul", { class: "field-values" }, field.top.map((v) => valueRow(field, v, total)));
      const more = field.top.length === 0 ? h("p", { class: "hint" }, "No values.") : null;
      item.append(h("div", { class: "field-detail" }, values, more,
        h("p", { class: "hint" }, field.exact ? "Counted over every match." :
          `Estimated from a sample of ${answer?.sampled.toLocaleString("en")} matches.`)));
    }
    name.addEventListener("click", () => {
      if (open.has(field.name)) open.delete(field.name);
      else open.add(field.name);
      draw();
      (list.querySelector(`li[data-field="${CSS.escape(field.name)}"] .field-name`) as HTMLElement | null)?.focus();
    });
    return item;
  }

  function draw() {
    clear(list);
    if (!answer) return;
    const needle = filter.value.trim().toLowerCase();
    const columns = handlers.columns();
    const fields = answer.fields.filter((f) => !needle || f.name.toLowerCase().includes(needle));
    // the fields shown as columns first, in column order
    fields.sort((a, b) => {
      const ia = columns.indexOf(a.name);
      const ib = columns.indexOf(b.name);
      return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib);
    });
    for (const f of fields) list.append(fieldItem(f, answer.total));
    if (!fields.length) list.append(h("li", { class: "hint" }, needle ? "No field matches." : "No fields."));
  }

  return {
    el,
    loading() {
      el.dataset.state = "loading";
    },
    show(a) {
      answer = a;
      el.dataset.state = "ready";
      el.dataset.total = String(a.total);
      note.textContent = a.total === 0 ? "No matches." : a.exact
        ? `${a.fields.length} fields of ${a.total.toLocaleString("en")} matches.`
        : `${a.fields.length} fields; shares of all ${a.total.toLocaleString("en")} matches ` +
          `(≈ estimated from ${a.sampled.toLocaleString("en")} of them).`;
      draw();
    },
    fail(message) {
      answer = null;
      el.dataset.state = "error";
      note.textContent = message;
      clear(list);
    },
  };
}
