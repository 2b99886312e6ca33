// A refused alert rule's messages, each beside the field it names: the server's 4xx body says
// which field (`error.detail.fields: [{field, message}]`, features/alerts/routes.py); an older
// server's one-line message is split at "; " and each part placed by the name opening it. The
// inputs keep what the user typed; only the messages change.

import { ApiError } from "./api";
import { fieldOf } from "./rulespec";

export interface FieldError {
  /** a rule field (`window`, `condition`, …), or null when the message names none */
  field: string | null;
  message: string;
}

/** What a message split from a one-line refusal is about (`window: …` → window). */
export function messageErrors(message: string): FieldError[] {
  return message.split("; ").filter(Boolean).map((part) => {
    const field = fieldOf(part);
    return { field, message: field ? part.replace(new RegExp(`^\\s*${field}\\s*:\\s*`), "") : part };
  });
}

/** The per-field errors of a failure: the server's `detail.fields`, else its message split. */
export function fieldErrors(err: unknown): FieldError[] {
  if (err instanceof ApiError) {
    const fields = (err.detail as { fields?: unknown } | null)?.fields;
    if (Array.isArray(fields) && fields.length) {
      return fields.map((f: { field?: unknown; message?: unknown }) => ({
        field: typeof f.field === "string" ? (f.field === "for_" ? "for" : f.field) : null,
        message: String(f.message ?? ""),
      }));
    }
    return messageErrors(err.message);
  }
  return [{ field: null, message: String((err as Error)?.message ?? err) }];
}

/**
 * Show each error in the `.field-error[data-error-for=<field>]` box of `form` that is not hidden
 * (a field shown for one kind of condition only), marking its input invalid; an error without
 * such a box goes to `general`. Errors of one field are joined. Clears what was shown before;
 * returns the first input marked (to focus), or null.
 */
export function showFieldErrors(form: HTMLElement, general: HTMLElement, errors: FieldError[]): HTMLElement | null {
  for (const box of form.querySelectorAll<HTMLElement>(".field-error")) {
    box.hidden = true;
    box.textContent = "";
  }
  for (const input of form.querySelectorAll(".invalid")) {
    input.classList.remove("invalid");
    input.removeAttribute("aria-invalid");
  }
  general.textContent = "";
  let first: HTMLElement | null = null;
  for (const { field, message } of errors) {
    const box = field
      ? [...form.querySelectorAll<HTMLElement>(".field-error")].find((b) => b.dataset.errorFor === field &&
        !b.parentElement?.closest("[hidden]"))
      : undefined;
    if (!box) {
      const text = field ? `${field}: ${message}` : message;
      general.textContent = general.textContent ? `${general.textContent}; ${text}` : text;
      continue;
    }
    box.textContent = box.textContent ? `${box.textContent}; ${message}` : message;
    box.hidden = false;
    const input = box.parentElement?.querySelector<HTMLElement>("input, select");
    if (input) {
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  return first;
}
