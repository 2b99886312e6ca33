// The retention rules' editor: one small form per rule (which records, the ages at which they leave
// each tier and are deleted, a sample, a priority), "+ rule" and "remove"; Preview asks the server
// what the next run would do under the rules as typed (POST /api/v1/retention/preview with them),
// Save replaces the policy (PUT /api/v1/retention). The server validates; each of its messages is
// shown under the field it names (`rules.1: warm: tier end ages must grow …` under the second
// rule's warm age).

import { bytesText, countText, MATCH_KEYS, type RetentionRule, retentionFields, retentionRule } from "../../admin";
import { postJSON, request } from "../../api";
import { clear, h } from "../../dom";
import { busy, clearErrors, field, showError } from "./form";

interface Preview {
  rule: string;
  to_warm: number;
  to_cold: number;
  delete: number;
  sample_out: number;
  bytes: number;
}

const LABELS: [string, string, string][] = [
  ["name", "Name *", "letters, digits, _ . -"],
  ["tenant", "Tenant", ""], ["service", "Service", "a, b: either"], ["source", "Source", ""], ["level", "Level", ""],
  ["hot", "Hot until", "e.g. 3d"], ["warm", "Warm until", ""], ["cold", "Cold until", ""],
  ["delete", "Deleted at", "or never"], ["keep", "Keep %", "sampled"], ["after", "after", "e.g. 7d"],
  ["priority", "Priority", "lowest freed first"],
];

/** Where a value's server-side name is (`match.service`, `sample.keep`), for its error box. */
const serverName = (key: string): string =>
  (MATCH_KEYS as readonly string[]).includes(key) ? `match.${key}` : key === "keep" || key === "after" ? `sample.${key}` : key;

export function previewText(p: Preview): string {
  const parts = [p.to_warm && `${countText(p.to_warm)} to warm`, p.to_cold && `${countText(p.to_cold)} to cold`,
    p.delete && `${countText(p.delete)} deleted`, p.sample_out && `${countText(p.sample_out)} sampled out`].filter(Boolean);
  return parts.length ? `${parts.join(", ")} (${bytesText(p.bytes)})` : "nothing";
}

export function retentionEditor(box: HTMLElement, rules: RetentionRule[], onDone: (saved: boolean) => void): void {
  clear(box);
  box.hidden = false;
  const list = h("div", { class: "retention-rules-edit", id: "retention-edit-rules" });
  const general = h("p", { class: "form-error", id: "retention-edit-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary", id: "retention-save" }, "Save rules");
  const preview = h("button", { type: "button", id: "retention-edit-preview" }, "Preview");
  const form = h("form", { class: "settings-form", id: "retention-form", novalidate: true },
    h("h2", null, "Edit retention rules"),
    h("p", { class: "hint" },
      "Ages are durations (7d, 12h, 30m) counted from a record's time; tier ages grow from hot to warm to cold. " +
      "Without Deleted at, records go when they leave their last tier. Empty match fields match anything."),
    list,
    h("div", { class: "row" },
      h("button", { type: "button", class: "mini", id: "add-retention-rule",
        onclick: () => draw([...read(), { name: "" }]) }, "+ rule")),
    h("div", { class: "row" }, save, preview,
      h("button", { type: "button", onclick: () => { box.hidden = true; onDone(false); } }, "Cancel")),
    general);

  function read(): RetentionRule[] {
    return [...list.querySelectorAll<HTMLElement>(".retention-rule")].map((card) => {
      const values: Record<string, string> = {};
      for (const input of card.querySelectorAll<HTMLInputElement>("input[data-key]")) values[input.dataset.key!] = input.value;
      return retentionRule(values);
    });
  }

  function draw(items: RetentionRule[]): void {
    clear(list);
    items.forEach((rule, i) => {
      const values = retentionFields(rule);
      const fields = LABELS.map(([key, label, hint]) => {
        const input = h("input", { type: "text", autocomplete: "off", spellcheck: "false", "data-key": key });
        input.value = values[key] ?? "";
        return field(label, input, { name: `rules.${i}.${serverName(key)}`, hint, cls: key === "name" ? "wide" : "narrow" });
      });
      list.append(h("fieldset", { class: "retention-rule card", "data-index": String(i) },
        h("legend", null, `Rule ${i + 1}`),
        h("div", { class: "field-row" }, fields.slice(0, 5)),
        h("div", { class: "field-row" }, fields.slice(5)),
        h("p", { class: "field-error", "data-error-for": `rules.${i}`, role: "alert", hidden: true }),
        h("div", { class: "row" },
          h("span", { class: "hint rule-preview", role: "status" }),
          h("button", { type: "button", class: "mini", "data-action": "remove-rule",
            onclick: () => draw(read().filter((_r, j) => j !== i)) }, "Remove"))));
    });
    if (!items.length) list.append(h("p", { class: "hint" }, "No rules: every record stays hot and is never deleted by age."));
  }

  preview.addEventListener("click", () => void busy(preview, async () => {
    clearErrors(form);
    try {
      const out = (await postJSON<{ rules: Preview[] }>("/api/v1/retention/preview", { rules: read() })).rules;
      const cards = [...list.querySelectorAll<HTMLElement>(".retention-rule")];
      out.forEach((p, i) => {
        const line = cards[i]?.querySelector(".rule-preview");
        if (line) line.textContent = `Next run: ${previewText(p)}`;
      });
    } catch (err) {
      showError(form, err);
    }
  }));

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void busy(save, async () => {
      clearErrors(form);
      try {
        await request("/api/v1/retention", {
          method: "PUT", body: JSON.stringify({ rules: read() }), headers: { "Content-Type": "application/json" },
        });
      } catch (err) {
        showError(form, err);
        return;
      }
      box.hidden = true;
      onDone(true);
    });
  });
  draw(rules.length ? rules : [{ name: "default" }]);
  box.append(form);
  box.scrollIntoView({ block: "nearest" });
}
