// What every settings form shares: a labelled field with its error box, and the server's 4xx
// message put under the field it names (the rest under the form), so what the API refuses is read
// where it was typed. The server validates; the form adds no rules of its own.

import { fieldErrors } from "../../admin";
import { ApiError } from "../../api";
import { clear, h } from "../../dom";

export type Input = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** A field: label, control, hint, and a box for the server's word about it (`data-error-for`). */
export function field(label: string, control: Input, opts: { name: string; hint?: string; cls?: string }): HTMLElement {
  control.name = opts.name;
  return h("label", { class: `field ${opts.cls ?? ""}`.trim(), "data-field": opts.name },
    h("span", { class: "field-label" }, label),
    control,
    opts.hint ? h("span", { class: "hint" }, opts.hint) : null,
    h("p", { class: "field-error", "data-error-for": opts.name, role: "alert", hidden: true }));
}

/** A check box with its label on one line. */
export function checkbox(label: string, name: string, checked: boolean): HTMLElement {
  const box = h("input", { type: "checkbox", name });
  box.checked = checked;
  return h("label", { class: "check field", "data-field": name }, box, label,
    h("p", { class: "field-error", "data-error-for": name, role: "alert", hidden: true }));
}

export function clearErrors(form: HTMLElement): void {
  for (const box of form.querySelectorAll<HTMLElement>(".field-error")) {
    box.hidden = true;
    box.textContent = "";
  }
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  const general = form.querySelector<HTMLElement>(".form-error");
  if (general) general.textContent = "";
}

/**
 * Show an error from the server (or any thrown error) in `form`: each part of a 400's message
 * under the field it names, the first such field focused; everything else in the form's
 * `.form-error` (a 409, a name in use, under the name). `strip` takes a prefix off the names (`config.` for a channel's settings).
 */
export function showError(form: HTMLElement, err: unknown, strip: string[] = []): void {
  clearErrors(form);
  const general = form.querySelector<HTMLElement>(".form-error");
  const message = (err as Error)?.message ?? String(err);
  // a 400 names its fields; a 409 is a name in use (every form here has its name field)
  const parts = err instanceof ApiError && err.status === 400 ? fieldErrors(message, strip)
    : err instanceof ApiError && err.status === 409 ? new Map([["name", message]]) : new Map([["", message]]);
  let first: Input | null = null;
  const rest: string[] = [];
  const boxFor = (name: string) => form.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(name)}"]`);
  for (const [place, said] of parts) {
    let [loc, msg] = [place, said];
    // a check of a whole object names its field in the message (`rules.0: warm: must grow …`)
    const inner = /^(\w+): ([\s\S]*)$/.exec(msg);
    if (inner && boxFor(loc ? `${loc}.${inner[1]}` : inner[1])) {
      loc = loc ? `${loc}.${inner[1]}` : inner[1];
      msg = inner[2];
    }
    const box = loc ? boxFor(loc) : null;
    if (!box) {
      rest.push(loc ? `${loc}: ${msg}` : msg);
      continue;
    }
    box.hidden = false;
    box.textContent = msg;
    const control = box.closest(".field")?.querySelector<Input>("input, select, textarea") ?? null;
    control?.classList.add("invalid");
    first ??= control;
  }
  if (general) general.textContent = rest.join("; ");
  (first as Input | null)?.focus();
}

/**
 * What `load` answers, with `box` emptied for it; or null, when the load failed — the box then
 * says why (under `title`, when the box has one) — or was aborted because the page was left (the
 * box is left as it is).
 */
export async function loadInto<T>(box: HTMLElement, load: () => Promise<T>,
  opts: { title?: string; errorId?: string } = {}): Promise<T | null> {
  let answer: T;
  try {
    answer = await load();
  } catch (err) {
    if ((err as Error).name === "AbortError") return null;
    clear(box);
    if (opts.title) box.append(h("h2", null, opts.title));
    box.append(h("p", opts.errorId ? { class: "form-error", id: opts.errorId } : { class: "form-error" },
      (err as Error).message));
    return null;
  }
  clear(box);
  return answer;
}

/** A button that is disabled while its action runs (no double submits of a create). */
export async function busy<T>(button: HTMLButtonElement, fn: () => Promise<T>): Promise<T> {
  button.disabled = true;
  try {
    return await fn();
  } finally {
    button.disabled = false;
  }
}

/**
 * Mark a table's cells with their column's name (`data-label`), so that on a phone (style.css) each
 * row shows as a small card of `name value` lines with its buttons in reach, instead of a table
 * scrolled sideways inside its card.
 */
export function stacked(table: HTMLTableElement): HTMLTableElement {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent ?? "");
  table.classList.add("stack");
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((td, i) => {
      if (names[i]) td.setAttribute("data-label", names[i]);
    });
  }
  return table;
}
