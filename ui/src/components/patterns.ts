// Message patterns: the templates the server mined from messages (`| patterns`), and how they
// changed against the period before (`| patterns compare <duration>`).
//
// A template's variable parts are shown as `<*>` chips; a row leads to the records of that
// pattern (`pattern_id:…`), the filter the server indexes for it.

import type { Row } from "../api";
import { h } from "../dom";
import { recordTime } from "./records";

/** A template with its `<…>` placeholders marked, as text nodes and spans (never as HTML). */
export function templateText(template: unknown): HTMLElement {
  const el = h("code", { class: "template" });
  const text = String(template ?? "");
  let last = 0;
  for (const m of text.matchAll(/<[A-Za-z_*][A-Za-z0-9_*]*>/g)) {
    el.append(text.slice(last, m.index), h("span", { class: "var" }, m[0]));
    last = (m.index ?? 0) + m[0].length;
  }
  el.append(text.slice(last));
  return el;
}

const count = (v: unknown) => (typeof v === "number" ? v.toLocaleString("en") : String(v ?? ""));

/** The Patterns tab: one row per pattern, biggest first; a click (or Enter) picks the pattern. */
export function patternsTable(rows: Row[], onPick: (row: Row) => void): HTMLElement {
  return h("table", { class: "grid patterns", id: "patterns-table" },
    h("thead", null, h("tr", null,
      ["template", "service", "count", "first seen", "last seen", "sample"].map((c) =>
        h("th", { class: c === "count" ? "num" : "" }, c)))),
    h("tbody", null, rows.map((row) => {
      const pick = () => onPick(row);
      return h("tr", {
        class: "pick", tabindex: "0", title: "show the records of this pattern",
        "data-pattern-id": String(row.pattern_id ?? ""),
        onclick: pick,
        onkeydown: (ev: Event) => {
          const key = (ev as KeyboardEvent).key;
          if (key === "Enter" || key === " ") {
            ev.preventDefault();
            pick();
          }
        },
      },
      h("td", null, templateText(row.template)),
      h("td", null, String(row.service ?? "")),
      h("td", { class: "num" }, count(row.count)),
      h("td", { class: "nowrap" }, recordTime(row.first_seen)),
      h("td", { class: "nowrap" }, recordTime(row.last_seen)),
      h("td", { class: "sample" }, String(row.sample ?? "")));
    })));
}

function changeText(row: Row): string {
  if (row.status === "new") return "new";
  const change = Number(row.change);
  if (!Number.isFinite(change)) return "";
  return `${change > 0 ? "+" : ""}${Math.round(change * 100)} %`;
}

/** New and changed patterns of a service (`| patterns compare`), each a link to its records. */
export function patternChanges(rows: Row[], linkTo: (row: Row, text: Node) => HTMLElement): HTMLElement {
  return h("table", { class: "grid pattern-changes" },
    h("thead", null, h("tr", null,
      ["status", "template", "count", "before", "change"].map((c) =>
        h("th", { class: c === "count" || c === "before" || c === "change" ? "num" : "" }, c)))),
    h("tbody", null, rows.map((row) =>
      h("tr", { "data-pattern-id": String(row.pattern_id ?? ""), "data-status": String(row.status ?? "") },
        h("td", null, h("span", { class: `pattern-status status-${String(row.status ?? "")}` }, String(row.status ?? ""))),
        h("td", null, linkTo(row, templateText(row.template))),
        h("td", { class: "num" }, count(row.count)),
        h("td", { class: "num" }, count(row.previous_count)),
        h("td", { class: "num" }, changeText(row))))));
}
