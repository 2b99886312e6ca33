// Saved queries: every query saved from the search page (name, query, description, range), each
// opened in search over its range; Rename stores it under the new name and then deletes the old
// one (a name in use is refused by the server, and the old one is kept); Delete asks first.

import { getJSON, postJSON, request } from "../../api";
import { clear, h } from "../../dom";
import { link } from "../../router";
import { searchUrl } from "../../searchurl";
import { formatTime } from "../../timerange";
import type { TabContext } from "../settings";
import { busy, clearErrors, field, loadInto, showError } from "./form";

interface Saved {
  name: string;
  query: string;
  description: string;
  time_range: string;
  updated_ns: number;
}

export async function savedTab({ root, signal }: TabContext): Promise<void> {
  const list = h("section", { class: "card", id: "saved-queries" }, h("p", { class: "hint" }, "Loading…"));
  root.append(h("p", { class: "hint" }, "Queries saved with “Save query” on the search page; the query box offers them too."), list);

  function renameForm(row: HTMLElement, item: Saved): void {
    const cell = row.querySelector<HTMLElement>(".name-cell")!;
    clear(cell);
    const input = h("input", { type: "text", maxlength: "200", autocomplete: "off", "aria-label": "new name" });
    input.value = item.name;
    const save = h("button", { type: "submit", class: "mini primary" }, "Rename");
    const form = h("form", { class: "rename-form", novalidate: true },
      field("New name", input, { name: "name" }),
      h("div", { class: "row" }, save, h("button", { type: "button", class: "mini", onclick: () => void load() }, "Cancel")),
      h("p", { class: "form-error", role: "alert" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void busy(save, async () => {
        clearErrors(form);
        const next = input.value.trim();
        if (next === item.name) {
          await load();
          return;
        }
        try {
          // stored under the new name first, so a refused name leaves the old one as it was
          await postJSON("/api/v1/saved-queries", { name: next, query: item.query, description: item.description,
            time_range: item.time_range });
          await request(`/api/v1/saved-queries/${encodeURIComponent(item.name)}`, { method: "DELETE" });
        } catch (err) {
          showError(form, err);
          return;
        }
        await load();
      });
    });
    cell.append(form);
    input.focus();
    input.select();
  }

  async function load(): Promise<void> {
    const answer = await loadInto(list, () => getJSON<{ items: Saved[] }>("/api/v1/saved-queries", signal));
    if (answer === null) return;
    const items = answer.items ?? [];
    list.append(h("h2", null, "Saved queries"));
    if (!items.length) {
      list.append(h("p", { class: "hint", id: "no-saved" }, "No saved queries yet: run a search and choose “Save query”."));
      return;
    }
    const message = h("p", { class: "form-error", id: "saved-error", role: "alert" });
    list.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "saved-list" },
      h("thead", null, h("tr", null, ["name", "query", "range", "changed", ""].map((c) => h("th", null, c)))),
      h("tbody", null, items.map((item) => {
        const row = h("tr", { "data-saved": item.name },
          h("td", { class: "name-cell" }, h("div", null, item.name),
            item.description ? h("div", { class: "hint" }, item.description) : null),
          h("td", { class: "wrap" }, h("code", null, item.query)),
          h("td", null, `last ${item.time_range}`),
          h("td", null, formatTime(item.updated_ns / 1e6)),
          h("td", { class: "row-actions" },
            link(searchUrl(item.query, { from: `now-${item.time_range}`, to: "now" }), "Open in search", "open-search"),
            h("button", { type: "button", class: "mini", "data-action": "rename", onclick: () => renameForm(row, item) }, "Rename"),
            h("button", {
              type: "button", class: "mini", "data-action": "delete",
              onclick: async () => {
                message.textContent = "";
                if (!confirm(`Delete the saved query “${item.name}”?`)) return;
                try {
                  await request(`/api/v1/saved-queries/${encodeURIComponent(item.name)}`, { method: "DELETE" });
                  await load();
                } catch (err) {
                  message.textContent = (err as Error).message;
                }
              },
            }, "Delete")));
        return row;
      })))), message);
  }
  await load();
}
