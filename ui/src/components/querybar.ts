// The query box shared by search and live tail: Enter runs, and a syntax error is shown under the
// query with the character at its position marked (the server reports the 0-based position).

import { ApiError } from "../api";
import { clear, h } from "../dom";

export interface QueryBar {
  el: HTMLElement;
  input: HTMLInputElement;
  /** Beside the Run button (time picker). */
  extra: HTMLElement;
  /** Under the box, positioned over the page (suggestions). */
  box: HTMLElement;
  value(): string;
  set(q: string): void;
  showError(err: unknown, q: string): void;
  clearError(): void;
}

export function queryBar(initial: string, onRun: (q: string) => void, runLabel = "Run"): QueryBar {
  const input = h("input", {
    id: "query",
    type: "text", // not "search": Chrome clears a search field on Escape, which here only leaves it
    class: "query-input",
    value: initial,
    placeholder: 'service:checkout AND level:ERROR "payment declined"   (press / to focus, Enter to run)',
    spellcheck: "false",
    autocomplete: "off",
    "aria-label": "query",
  });
  input.value = initial;
  const errorBox = h("div", { class: "query-error", id: "query-error", role: "alert", hidden: true });
  const extra = h("div", { class: "querybar-extra" });
  const run = h("button", { type: "submit", class: "primary", id: "run" }, runLabel);
  const box = h("div", { class: "query-box" }, input);
  const form = h("form", { class: "querybar", role: "search" }, box, extra, run);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    onRun(input.value.trim() || "*");
  });
  input.addEventListener("input", () => {
    input.classList.remove("invalid");
  });
  const el = h("div", { class: "querybar-wrap" }, form, errorBox);

  return {
    el,
    input,
    extra,
    box,
    value: () => input.value.trim() || "*",
    set(q) {
      input.value = q;
    },
    clearError() {
      errorBox.hidden = true;
      clear(errorBox);
      input.classList.remove("invalid");
    },
    showError(err, q) {
      clear(errorBox);
      errorBox.hidden = false;
      if (!(err instanceof ApiError)) {
        errorBox.append(h("p", { class: "msg" }, String((err as Error)?.message ?? err)));
        return;
      }
      errorBox.dataset.code = err.code;
      errorBox.append(h("p", { class: "msg" }, h("strong", null, err.code), " ", err.message));
      if (err.position !== null) {
        const pos = Math.max(0, Math.min(err.position, q.length));
        errorBox.dataset.position = String(pos);
        const at = q.slice(pos, pos + 1) || " ";
        errorBox.append(
          h("pre", { class: "where" },
            h("code", null, q.slice(0, pos), h("mark", { class: "err-pos", title: `position ${pos}` }, at),
              q.slice(pos + 1)),
            "\n",
            h("span", { class: "caret" }, " ".repeat(pos) + "^")),
        );
        input.classList.add("invalid");
        input.focus();
        input.setSelectionRange(pos, Math.min(pos + 1, q.length));
      }
    },
  };
}
