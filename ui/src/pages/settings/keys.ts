// API keys: create one with a role and a scope (tenant, services), an expiry and an ingest rate;
// its secret is shown once, with a copy button, and never again (the server keeps only a hash).
// The list shows every key this key's scope covers; Revoke ends one at once. A scoped admin asking
// for a wider key gets the server's 403, shown under the form: the UI decides nothing itself.

import { countText, relativeText, scopeText } from "../../admin";
import { getJSON, postJSON, request } from "../../api";
import { copyText } from "../../components/records";
import { clear, h } from "../../dom";
import { formatTime } from "../../timerange";
import { whoami } from "../../whoami";
import type { TabContext } from "../settings";
import { busy, clearErrors, field, loadInto, showError } from "./form";

interface Key {
  prefix: string;
  name: string;
  role: string;
  tenant: string | null;
  services: string[] | null;
  created_ns: number;
  expires_ns: number | null;
  revoked: boolean;
  ingest_rate: number | null;
}

interface Created {
  key: string;
  prefix: string;
  role: string;
  tenant: string | null;
  services: string[] | null;
  expires_ns: number | null;
}

const ROLES: [string, string][] = [
  ["reader", "reader — search, tail, traces, dashboards, alerts (read)"],
  ["writer", "writer — ingest only (shippers, agents)"],
  ["admin", "admin — everything, within its scope"],
  ["metrics", "metrics — GET /metrics only (Prometheus)"],
];

export async function keysTab({ root, signal }: TabContext): Promise<void> {
  const me = whoami();
  const formBox = h("section", { class: "card settings-editor", id: "key-editor" });
  const shown = h("section", { class: "card secret-once", id: "new-key", hidden: true });
  const list = h("section", { class: "card", id: "keys" }, h("p", { class: "hint" }, "Loading…"));
  root.append(shown, formBox, list); // the new key on top, where it is seen first

  const name = h("input", { type: "text", maxlength: "200", autocomplete: "off", placeholder: "checkout shipper" });
  const role = h("select", null, ROLES.map(([v, label]) => h("option", { value: v }, label)));
  const tenant = h("input", { type: "text", autocomplete: "off", spellcheck: "false",
    placeholder: me?.tenant ? me.tenant : "any" });
  const services = h("input", { type: "text", autocomplete: "off", spellcheck: "false",
    placeholder: me?.services?.length ? me.services.join(", ") : "any" });
  const expires = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "never" });
  const rate = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", placeholder: "no limit" });
  const general = h("p", { class: "form-error", id: "key-error", role: "alert" });
  const create = h("button", { type: "submit", class: "primary", id: "key-create" }, "Create key");
  const inherit = me?.tenant || me?.services?.length
    ? ` Left empty, the scope is this key's own (${scopeText(me)}).` : "";
  const form = h("form", { class: "settings-form", id: "key-form", novalidate: true },
    h("h2", null, "New API key"),
    h("div", { class: "field-row" },
      field("Name", name, { name: "name", cls: "wide", hint: "who or what uses it" }),
      field("Role", role, { name: "role", cls: "wide" })),
    h("div", { class: "field-row" },
      field("Tenant", tenant, { name: "tenant", cls: "narrow" }),
      field("Services", services, { name: "services", cls: "wide", hint: "names separated by commas" }),
      field("Expires after", expires, { name: "expires", cls: "narrow", hint: "30d, 12h, 1h30m" }),
      field("Ingest rate", rate, { name: "ingest_rate", cls: "narrow", hint: "records per second" })),
    h("p", { class: "hint" }, `The scope limits what the key reads, writes and administers.${inherit}`),
    h("div", { class: "row" }, create), general);
  formBox.append(form);

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void busy(create, async () => {
      clearErrors(form);
      const body: Record<string, unknown> = { role: role.value, name: name.value.trim() };
      if (tenant.value.trim()) body.tenant = tenant.value.trim();
      const svc = services.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (svc.length) body.services = svc;
      if (expires.value.trim()) body.expires = expires.value.trim();
      const r = rate.value.trim();
      if (r) body.ingest_rate = /^\d+$/.test(r) ? Number(r) : r; // not a number: the server says so under the field
      let made: Created;
      try {
        made = await postJSON<Created>("/api/v1/keys", body);
      } catch (err) {
        // a duration the server cannot read is about the expiry (its message names the text only)
        showError(form, err);
        if (/is not a duration/.test((err as Error).message)) {
          general.textContent = "";
          const box = form.querySelector<HTMLElement>('[data-error-for="expires"]')!;
          box.hidden = false;
          box.textContent = (err as Error).message;
          expires.classList.add("invalid");
          expires.focus();
        }
        return;
      }
      form.reset();
      showOnce(made);
      await load();
    });
  });

  /** The new key's secret, this once: copy it now, the server cannot show it again. */
  function showOnce(made: Created): void {
    clear(shown);
    shown.hidden = false;
    const secret = h("input", { type: "text", id: "new-key-secret", readonly: true, spellcheck: "false", "aria-label": "the new key" });
    secret.value = made.key;
    const status = h("span", { class: "hint", id: "copy-status", role: "status" });
    const copy = h("button", { type: "button", class: "primary", id: "copy-key" }, "Copy");
    copy.addEventListener("click", async () => {
      status.textContent = (await copyText(made.key)) ? "copied" : "select the key and copy it by hand";
    });
    shown.append(
      h("h2", null, `Key ${made.prefix} created (${made.role}, ${scopeText(made)})`),
      h("p", { class: "warn-text" }, "Copy the key now: it is shown this once. The server keeps only a hash of it."),
      h("div", { class: "secret-row" }, secret, copy, status),
      h("button", { type: "button", class: "ghost", id: "key-done", onclick: () => { shown.hidden = true; clear(shown); } },
        "I have kept it — hide it"));
    shown.scrollIntoView({ block: "nearest" });
    secret.focus();
    secret.select();
  }

  async function load(): Promise<void> {
    const answer = await loadInto(list, () => getJSON<{ keys: Key[] }>("/api/v1/keys", signal));
    if (answer === null) return;
    const keys = answer.keys ?? [];
    const active = keys.filter((k) => !k.revoked).length;
    list.append(h("h2", null, `Keys (${active} active of ${keys.length})`));
    const now = Date.now();
    const message = h("p", { class: "form-error", id: "keys-error", role: "alert" });
    list.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "key-list" },
      h("thead", null, h("tr", null, ["prefix", "name", "role", "scope", "created", "expires", "ingest rate", "state", ""]
        .map((c) => h("th", null, c)))),
      h("tbody", null, keys.slice().reverse().map((k) => {
        const expired = k.expires_ns !== null && k.expires_ns / 1e6 <= now;
        const state = k.revoked ? "revoked" : expired ? "expired" : "active";
        const mine = k.prefix === me?.prefix;
        return h("tr", { "data-key": k.prefix, "data-state": state },
          h("td", null, h("code", null, k.prefix), mine ? h("span", { class: "hint" }, " (this key)") : null),
          h("td", null, k.name || "—"),
          h("td", null, k.role),
          h("td", null, scopeText(k)),
          h("td", null, formatTime(k.created_ns / 1e6)),
          h("td", null, k.expires_ns === null ? "never" : h("span", { title: formatTime(k.expires_ns / 1e6) },
            relativeText(k.expires_ns, now))),
          h("td", { class: "num" }, k.ingest_rate === null ? "—" : `${countText(k.ingest_rate)}/s`),
          h("td", null, h("span", { class: `state state-key-${state}` }, state)),
          h("td", { class: "row-actions" }, k.revoked ? null : h("button", {
            type: "button", class: "mini", "data-action": "revoke",
            onclick: async () => {
              message.textContent = "";
              const warn = mine ? " This is the key you are logged in with: you will be logged out." : "";
              if (!confirm(`Revoke the key ${k.prefix}${k.name ? ` (${k.name})` : ""}? It stops working at once.${warn}`)) return;
              try {
                await request(`/api/v1/keys/${encodeURIComponent(k.prefix)}`, { method: "DELETE" });
                await load();
              } catch (err) {
                message.textContent = (err as Error).message;
              }
            },
          }, "Revoke")));
      })))), message);
  }
  await load();
}
