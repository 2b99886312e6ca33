// Channels: where alerts are sent (webhook, e-mail, PagerDuty, Alertmanager, Teams). A form per
// kind, built from the kind's settings (admin.ts CHANNEL_KINDS); secrets (a webhook's URL, a
// password, an integration key) are written only: the server never sends them back, so the form
// shows whether one is set and an empty field keeps it. Test sends one notification now.

import { CHANNEL_KINDS, type ChannelField, channelConfig, scopeText } from "../../admin";
import { getJSON, request } from "../../api";
import { clear, h } from "../../dom";
import { formatTime } from "../../timerange";
import type { TabContext } from "../settings";
import { busy, checkbox, clearErrors, field, loadInto, showError, type Input } from "./form";

interface Channel {
  name: string;
  kind: string;
  config: Record<string, unknown>;
  secure_fields: string[];
  scope: { tenant?: string | null; services?: string[] | null } | null;
  updated_ns: number;
}

/** Where a channel sends, as far as it may be shown (secrets come back masked from the server). */
function destination(c: Channel): string {
  const cfg = c.config;
  if (c.kind === "email") return `${(cfg.to as string[] | undefined)?.join(", ") ?? ""} via ${cfg.host ?? ""}`;
  if (c.kind === "pagerduty") return `PagerDuty (${cfg.severity ?? "error"})`;
  return String(cfg.url ?? "");
}

function control(f: ChannelField, value: unknown, secretSet: boolean): Input {
  if (f.type === "select") {
    const sel = h("select", null, (f.options ?? []).map((o) => h("option", { value: o }, o)));
    sel.value = String(value ?? f.default ?? f.options?.[0] ?? "");
    return sel;
  }
  if (f.type === "headers") {
    const area = h("textarea", { rows: "2", class: "mono", spellcheck: "false", placeholder: f.placeholder ?? "" });
    if (secretSet) area.placeholder = "set — leave empty to keep the stored headers";
    return area;
  }
  const input = h("input", {
    type: f.secret ? "password" : "text", autocomplete: f.secret ? "new-password" : "off", spellcheck: "false",
    inputmode: f.type === "number" ? "decimal" : null, placeholder: f.placeholder ?? "",
  });
  if (f.secret) {
    // never filled in: the server does not give a secret back; leaving it empty keeps the stored one
    if (secretSet) input.placeholder = "set — leave empty to keep it";
  } else if (value !== undefined && value !== null) {
    input.value = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return input;
}

export async function channelsTab({ root, signal }: TabContext): Promise<void> {
  const list = h("section", { class: "card", id: "channels" }, h("p", { class: "hint" }, "Loading…"));
  const editor = h("section", { class: "card settings-editor", id: "channel-editor", hidden: true });
  const newButton = h("button", { type: "button", class: "primary", id: "new-channel" }, "New channel");
  root.append(
    h("div", { class: "toolbar" },
      h("p", { class: "hint grow" },
        "Where alert rules send their notifications. Secrets are written only: once saved, nobody reads them back."),
      newButton),
    editor, list);

  function edit(existing: Channel | null): void {
    clear(editor);
    editor.hidden = false;
    const name = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "200" });
    const kind = h("select", null, Object.entries(CHANNEL_KINDS).map(([k, v]) => h("option", { value: k }, v.label)));
    if (existing) {
      name.value = existing.name;
      name.readOnly = true;
      kind.value = existing.kind;
      kind.disabled = true; // another kind is another channel: its secrets would not carry over
    }
    const settings = h("div", { class: "field-row", id: "channel-settings" });
    const general = h("p", { class: "form-error", id: "channel-error", role: "alert" });
    const save = h("button", { type: "submit", class: "primary", id: "channel-save" }, existing ? "Save" : "Create");
    const cancel = h("button", { type: "button", onclick: () => { editor.hidden = true; } }, "Cancel");
    const drawSettings = () => {
      clear(settings);
      const secure = new Set(existing?.kind === kind.value ? existing.secure_fields : []);
      for (const f of CHANNEL_KINDS[kind.value].fields) {
        const value = existing?.kind === kind.value ? existing.config[f.key] : undefined;
        if (f.type === "check") {
          settings.append(checkbox(f.label, f.key, typeof value === "boolean" ? value : f.default === true));
          continue;
        }
        const secretNote = f.secret ? (secure.has(f.key) ? "set; write-only" : "write-only") : "";
        const hint = [f.hint, secretNote].filter(Boolean).join(" · ");
        const wide = f.type === "headers" || f.key === "url" || f.key === "to";
        settings.append(field(`${f.label}${f.required ? " *" : ""}`, control(f, value, secure.has(f.key)),
          { name: f.key, hint, cls: wide ? "wide" : "narrow" }));
      }
    };
    kind.addEventListener("change", drawSettings);
    drawSettings();
    const form = h("form", { class: "settings-form", id: "channel-form", novalidate: true },
      h("h2", null, existing ? `Edit channel “${existing.name}”` : "New channel"),
      h("div", { class: "field-row" },
        field("Name *", name, { name: "name", cls: "wide" }),
        field("Kind", kind, { name: "kind", cls: "narrow" })),
      settings,
      h("div", { class: "row" }, save, cancel), general);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void busy(save, async () => {
        clearErrors(form);
        const values: Record<string, string | boolean> = {};
        for (const el of settings.querySelectorAll<Input>("input, select, textarea")) {
          values[el.name] = el instanceof HTMLInputElement && el.type === "checkbox" ? el.checked : el.value;
        }
        let config: Record<string, unknown>;
        try {
          config = channelConfig(kind.value, values);
        } catch (err) {
          // a header line the form cannot read: said under the headers, nothing is sent
          const box = form.querySelector<HTMLElement>('[data-error-for="headers"]');
          if (box) {
            box.hidden = false;
            box.textContent = (err as Error).message;
          }
          return;
        }
        try {
          const body = JSON.stringify({ name: name.value.trim() || null, kind: kind.value, config });
          const headers = { "Content-Type": "application/json" };
          if (existing) {
            await request(`/api/v1/channels/${encodeURIComponent(existing.name)}`, { method: "PUT", body, headers });
          } else {
            await request("/api/v1/channels", { method: "POST", body, headers });
          }
        } catch (err) {
          showError(form, err, ["config."]);
          return;
        }
        editor.hidden = true;
        await load();
      });
    });
    editor.append(form);
    (existing ? settings.querySelector<Input>("input, textarea") : name)?.focus();
  }
  newButton.addEventListener("click", () => edit(null));

  async function load(): Promise<void> {
    const answer = await loadInto(list, () => getJSON<{ channels: Channel[] }>("/api/v1/channels", signal));
    if (answer === null) return;
    const channels = answer.channels ?? [];
    list.append(h("h2", null, "Channels"));
    if (!channels.length) {
      list.append(h("p", { class: "hint", id: "no-channels" }, "No channels yet: create one, then name it in an alert rule."));
      return;
    }
    const message = h("p", { class: "form-error", id: "channels-error", role: "alert" });
    list.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "channel-list" },
      h("thead", null, h("tr", null, ["name", "kind", "sends to", "secrets", "scope", "changed", "", ""].map((c) => h("th", null, c)))),
      h("tbody", null, channels.map((c) => {
        const result = h("span", { class: "test-result", role: "status" });
        const test = h("button", { type: "button", class: "mini", "data-action": "test" }, "Test");
        test.addEventListener("click", () => void busy(test, async () => {
          result.className = "test-result hint";
          result.textContent = "sending…";
          try {
            await request(`/api/v1/channels/${encodeURIComponent(c.name)}/test`, { method: "POST" });
            result.className = "test-result ok";
            result.textContent = "test sent ✓";
          } catch (err) {
            result.className = "test-result form-error";
            result.textContent = (err as Error).message;
          }
        }));
        return h("tr", { "data-channel": c.name },
          h("td", null, c.name),
          h("td", null, CHANNEL_KINDS[c.kind]?.label ?? c.kind),
          h("td", { class: "dest" }, h("code", null, destination(c))),
          h("td", null, c.secure_fields.length ? c.secure_fields.join(", ") + " (set)" : "—"),
          h("td", null, scopeText(c.scope)),
          h("td", null, formatTime(c.updated_ns / 1e6)),
          h("td", { class: "row-actions" },
            test,
            h("button", { type: "button", class: "mini", "data-action": "edit", onclick: () => edit(c) }, "Edit"),
            h("button", {
              type: "button", class: "mini", "data-action": "delete",
              onclick: async () => {
                message.textContent = "";
                if (!confirm(`Delete the channel “${c.name}”?`)) return;
                try {
                  await request(`/api/v1/channels/${encodeURIComponent(c.name)}`, { method: "DELETE" });
                  await load();
                } catch (err) {
                  message.textContent = (err as Error).message;
                }
              },
            }, "Delete")),
          h("td", { class: "result-cell" }, result));
      })))), message);
  }
  await load();
}
