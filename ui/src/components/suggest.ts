// Suggestions under the query box: field names, values of the field being typed (from
// GET /api/v1/fields), pipes and functions after `|`, and the recent and saved queries when the
// box is empty. Arrow keys move, Enter or Tab takes one, Escape closes; typing goes on as usual.

import { isScalar } from "../api";
import { applyCompletion, type Completion, completionAt, FUNCTIONS, insertion, PIPES, rank } from "../completion";
import { h } from "../dom";
import { valueLabel } from "./fieldsidebar";

export interface SuggestSource {
  /** Field names of the records in the current range. */
  fields(): Promise<string[]>;
  /** The most frequent values of one field in the current range. */
  values(field: string): Promise<unknown[]>;
  /** Recent queries, newest first. */
  recent(): string[];
  /** Saved queries (name and text). */
  saved(): Promise<{ name: string; query: string }[]>;
}

interface Option {
  kind: string;
  label: string;
  detail?: string;
  apply(): void;
}

const MAX = 12;
const KEYWORDS = ["AND", "OR", "NOT"];

export function attachSuggest(input: HTMLInputElement, source: SuggestSource, onChosenQuery: () => void): HTMLElement {
  const list = h("ul", { class: "suggest", id: "suggest", role: "listbox", "aria-label": "suggestions", hidden: true });
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", "suggest");
  input.setAttribute("aria-expanded", "false");
  let options: Option[] = [];
  let active = -1;
  let ticket = 0;

  function close() {
    ticket++; // a list still being fetched must not open after this
    list.hidden = true;
    list.replaceChildren();
    options = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function mark(i: number) {
    active = i;
    list.querySelectorAll("li[role=option]").forEach((li, n) => li.setAttribute("aria-selected", String(n === i)));
    if (i >= 0) {
      input.setAttribute("aria-activedescendant", `suggest-${i}`);
      document.getElementById(`suggest-${i}`)?.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function show(next: Option[], title: string) {
    options = next.slice(0, MAX);
    list.replaceChildren();
    if (!options.length) {
      close();
      return;
    }
    if (title) list.append(h("li", { class: "suggest-title", role: "presentation" }, title));
    options.forEach((o, i) => {
      const li = h("li", { role: "option", id: `suggest-${i}`, class: `suggest-${o.kind}`, "data-kind": o.kind,
        "aria-selected": "false" },
      h("span", { class: "suggest-label" }, o.label),
      o.detail ? h("span", { class: "suggest-detail" }, o.detail) : null);
      // mousedown, not click: the box keeps its focus (and its caret)
      li.addEventListener("mousedown", (ev) => {
        ev.preventDefault();
        choose(i);
      });
      list.append(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
  }

  function choose(i: number) {
    const o = options[i];
    if (!o) return;
    close();
    o.apply();
  }

  function completeWith(c: Completion, chosen: string | number | boolean) {
    const { q, caret } = applyCompletion(input.value, c, insertion(c, chosen));
    input.value = q;
    input.setSelectionRange(caret, caret);
    input.dispatchEvent(new Event("input"));
  }

  async function update() {
    const mine = ++ticket;
    const text = input.value;
    const caret = input.selectionStart ?? text.length;
    if (text.trim() === "" || text.trim() === "*") {
      const saved = await source.saved().catch(() => []);
      if (mine !== ticket) return;
      const opts: Option[] = source.recent().map((q) => ({ kind: "recent", label: q, detail: "recent",
        apply: () => { input.value = q; onChosenQuery(); } }));
      for (const s of saved) {
        opts.push({ kind: "saved", label: s.query, detail: `saved: ${s.name}`,
          apply: () => { input.value = s.query; onChosenQuery(); } });
      }
      show(opts, opts.length ? "Recent and saved queries" : "");
      return;
    }
    const c = completionAt(text, caret);
    let opts: Option[] = [];
    let title = "";
    if (c.kind === "field") {
      const names = await source.fields().catch(() => [] as string[]);
      if (mine !== ticket) return;
      opts = rank(names, c.prefix).map((n) => ({ kind: "field", label: n, apply: () => completeWith(c, n) }));
      if (c.prefix) {
        for (const k of KEYWORDS) {
          if (k.startsWith(c.prefix.toUpperCase()) && k !== c.prefix.toUpperCase()) {
            opts.push({ kind: "keyword", label: k, apply: () => completeWith({ ...c, kind: "pipe" }, k) });
          }
        }
      }
      title = "Fields";
    } else if (c.kind === "value") {
      const values = await source.values(c.field).catch(() => [] as unknown[]);
      if (mine !== ticket) return;
      const p = c.prefix.toLowerCase();
      opts = values.filter((v) => valueLabel(v).toLowerCase().includes(p) && isScalar(v))
        .map((v) => ({ kind: "value", label: valueLabel(v), apply: () => completeWith(c, v as string) }));
      title = `Values of ${c.field}`;
    } else if (c.kind === "pipe") {
      opts = rank(PIPES, c.prefix).map((p) => ({ kind: "pipe", label: p, apply: () => completeWith(c, p) }));
      title = "Pipes";
    } else if (c.kind === "function") {
      opts = rank(FUNCTIONS, c.prefix).map((f) => ({ kind: "function", label: `${f}()`,
        apply: () => completeWith(c, f) }));
      title = "Functions";
    }
    if (mine !== ticket) return;
    // a suggestion that only repeats what is typed is no help
    const typed = c.kind === "none" ? "" : c.prefix;
    show(opts.filter((o) => o.label !== typed), title);
  }

  input.addEventListener("input", () => void update());
  input.addEventListener("focus", () => void update());
  input.addEventListener("click", () => void update());
  input.addEventListener("blur", () => close());
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (list.hidden || active < 0)) {
      close(); // the query runs: no list may open over its answer, even one still being fetched
      return;
    }
    if (list.hidden) {
      if (ev.key === "ArrowDown") {
        ev.preventDefault();
        void update();
      }
      return;
    }
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = options.length;
      mark(ev.key === "ArrowDown" ? (active + 1) % n : (active - 1 + n) % n);
    } else if (ev.key === "Enter" && active >= 0) {
      ev.preventDefault();
      choose(active);
    } else if (ev.key === "Tab" && options.length && !ev.shiftKey) {
      ev.preventDefault();
      choose(Math.max(active, 0));
    } else if (ev.key === "Escape") {
      ev.stopPropagation();
      close();
    }
  });
  return list;
}
