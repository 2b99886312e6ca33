// Alerts: the rules and their state. The page (and its link) only appears when the server
// answers GET /api/v1/alerts/rules; the alerting API is built separately, so the view reads its
// answer generically (a list, or an object holding one) and shows the fields it finds.

import { getJSON, type Row } from "../api";
import { clear, h } from "../dom";
import { link, type Page } from "../router";
import { searchUrl } from "./search";

const PREFERRED = ["name", "state", "query", "condition", "window", "for", "interval", "channels", "labels"];

function rulesOf(answer: unknown): Row[] {
  if (Array.isArray(answer)) return answer as Row[];
  if (answer && typeof answer === "object") {
    for (const value of Object.values(answer as Row)) if (Array.isArray(value)) return value as Row[];
  }
  return [];
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function alertsPage(): Page {
  let controller: AbortController | null = null;
  return {
    async mount(root) {
      document.title = "Alerts · logharbor";
      const body = h("section", { class: "card", id: "alerts" }, h("p", { class: "hint" }, "Loading…"));
      root.append(h("div", { class: "page" }, h("div", { class: "toolbar" }, h("h1", null, "Alert rules")), body));
      controller = new AbortController();
      let rules: Row[];
      try {
        rules = rulesOf(await getJSON<unknown>("/api/v1/alerts/rules", controller.signal));
      } catch (err) {
        if ((err as Error).name === "AbortError") return;
        clear(body);
        body.append(h("p", { class: "form-error" }, (err as Error).message));
        return;
      }
      clear(body);
      if (!rules.length) {
        body.append(h("p", { class: "hint" }, "No alert rules yet."));
        return;
      }
      const keys = new Set<string>();
      rules.forEach((r) => Object.keys(r).forEach((k) => keys.add(k)));
      const columns = [...PREFERRED.filter((k) => keys.has(k)), ...[...keys].filter((k) => !PREFERRED.includes(k))]
        .slice(0, 10);
      body.append(h("table", { class: "grid" },
        h("thead", null, h("tr", null, columns.map((c) => h("th", null, c)))),
        h("tbody", null, rules.map((rule) => h("tr", null, columns.map((c) => {
          const text = cell(rule[c]);
          if (c === "query" && typeof rule[c] === "string") {
            return h("td", null, link(searchUrl(text, { from: "now-1h", to: "now" }), text));
          }
          if (c === "state") return h("td", null, h("span", { class: `state state-${text.toLowerCase()}` }, text));
          return h("td", null, text);
        }))))));
    },
    unmount() {
      controller?.abort();
    },
  };
}
