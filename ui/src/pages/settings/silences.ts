// Silences: hold back the notifications of alerts whose labels match, until a time. The alerts
// pending or firing now are listed with a "Silence…" button that fills the form with the matchers
// of exactly that alert group (its rule and group labels); the form also opens filled from the URL
// (`/ui/settings/silences?matcher=alertname%3Dx&matcher=service%3Dcheckout`), so other pages can
// link here. Expire ends a silence now (the server keeps it for the record).

import { alertMatchers, type Matcher, matchersText, relativeText, scopeText, silencedBy } from "../../admin";
import { getJSON, postJSON, request } from "../../api";
import { clear, h } from "../../dom";
import { formatTime } from "../../timerange";
import type { TabContext } from "../settings";
import { busy, clearErrors, field, loadInto, showError } from "./form";

interface Silence {
  id: number;
  matchers: Matcher[];
  starts_ns: number;
  ends_ns: number;
  comment: string;
  created_by: string;
  state: "active" | "pending" | "expired";
  scope: { tenant?: string | null; services?: string[] | null } | null;
}

interface Alert {
  rule: string;
  group: Record<string, unknown>;
  labels?: Record<string, unknown>;
  state: string;
  value: number | null;
  active_since_ns: number | null;
}

const OPS: Matcher["op"][] = ["=", "!=", "=~", "!~"];

/** `name=value`, `name!=value`, `name=~re`, `name!~re` from a URL parameter. */
function matcherFromParam(text: string): Matcher | null {
  const m = /^([^=!~]+)(=~|!~|!=|=)(.*)$/.exec(text);
  return m ? { name: m[1], op: m[2] as Matcher["op"], value: m[3] } : null;
}

export async function silencesTab({ root, url, signal }: TabContext): Promise<void> {
  const alertsBox = h("section", { class: "card", id: "silence-alerts" });
  const formBox = h("section", { class: "card settings-editor", id: "silence-editor", hidden: true });
  const list = h("section", { class: "card", id: "silences" }, h("p", { class: "hint" }, "Loading…"));
  const newButton = h("button", { type: "button", class: "primary", id: "new-silence" }, "New silence");
  const showExpired = h("input", { type: "checkbox", id: "show-expired" });
  root.append(
    h("div", { class: "toolbar" },
      h("p", { class: "hint grow" },
        "A silence holds back the notifications of the alerts its matchers select (the alerts still change state). " +
        "An alert's labels are alertname (its rule), the rule's labels and its group."),
      newButton),
    formBox, alertsBox, list);

  function open(matchers: Matcher[], comment = ""): void {
    clear(formBox);
    formBox.hidden = false;
    const rows = h("div", { class: "matchers", id: "matchers" });
    const addRow = (m: Matcher) => {
      const i = rows.children.length;
      const name = h("input", { type: "text", "aria-label": "label", placeholder: "label", spellcheck: "false", autocomplete: "off" });
      name.value = m.name;
      const op = h("select", { "aria-label": "match" }, OPS.map((o) => h("option", { value: o }, o)));
      op.value = m.op;
      const value = h("input", { type: "text", "aria-label": "value", placeholder: "value", spellcheck: "false", autocomplete: "off" });
      value.value = m.value;
      const row = h("div", { class: "matcher field", "data-error-for-row": String(i) },
        h("div", { class: "matcher-inputs" }, name, op, value,
          h("button", { type: "button", class: "mini", "aria-label": "remove this matcher",
            onclick: () => { row.remove(); renumber(); } }, "×")),
        h("p", { class: "field-error", "data-error-for": `matchers.${i}`, role: "alert", hidden: true }));
      rows.append(row);
    };
    const renumber = () => {
      [...rows.children].forEach((row, i) => row.querySelector(".field-error")?.setAttribute("data-error-for", `matchers.${i}`));
    };
    for (const m of matchers.length ? matchers : [{ name: "alertname", op: "=", value: "" } as Matcher]) addRow(m);
    const ends = h("input", { type: "text", value: "2h", spellcheck: "false", autocomplete: "off" });
    const note = h("input", { type: "text", maxlength: "2000", autocomplete: "off" });
    note.value = comment;
    const general = h("p", { class: "form-error", id: "silence-error", role: "alert" });
    const save = h("button", { type: "submit", class: "primary", id: "silence-save" }, "Silence");
    const form = h("form", { class: "settings-form", id: "silence-form", novalidate: true },
      h("h2", null, "New silence"),
      h("div", null, h("span", { class: "matchers-label" }, "Matchers (all must hold; =~ and !~ take an RE2 regex of the whole value)"),
        rows,
        h("p", { class: "field-error", "data-error-for": "matchers", role: "alert", hidden: true }),
        h("button", { type: "button", class: "mini", id: "add-matcher",
          onclick: () => addRow({ name: "", op: "=", value: "" }) }, "+ matcher")),
      h("div", { class: "field-row" },
        field("Until", ends, { name: "ends_at", cls: "narrow",
          hint: "a duration from now (2h, 1d) or a time (2026-12-24 08:00, RFC 3339)" }),
        field("Comment", note, { name: "comment", cls: "wide", hint: "why, and who to ask" })),
      h("div", { class: "row" }, save,
        h("button", { type: "button", onclick: () => { formBox.hidden = true; } }, "Cancel")),
      general);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void busy(save, async () => {
        clearErrors(form);
        const body = {
          matchers: [...rows.querySelectorAll(".matcher")].map((row) => {
            const [name, value] = row.querySelectorAll("input");
            return { name: name.value.trim(), op: row.querySelector("select")!.value, value: value.value };
          }),
          ends_at: ends.value.trim(),
          comment: note.value,
        };
        try {
          await postJSON("/api/v1/silences", body);
        } catch (err) {
          showError(form, err);
          return;
        }
        formBox.hidden = true;
        await Promise.all([showAlerts(), load()]);
      });
    });
    formBox.append(form);
    formBox.scrollIntoView({ block: "nearest" });
    (rows.querySelector<HTMLInputElement>("input[aria-label=value]:placeholder-shown") ?? ends).focus();
  }
  newButton.addEventListener("click", () => open([]));
  showExpired.addEventListener("change", () => void load());

  async function showAlerts(): Promise<void> {
    const both = await loadInto(alertsBox, () => Promise.all([
      getJSON<{ alerts: Alert[] }>("/api/v1/alerts", signal).then((a) => a.alerts ?? []),
      getJSON<{ silences: Silence[] }>("/api/v1/silences", signal).then((a) => a.silences ?? []),
    ]), { title: "Alerts now" });
    if (both === null) return;
    const [alerts, silences] = both;
    alertsBox.append(h("h2", null, "Alerts now"));
    if (!alerts.length) {
      alertsBox.append(h("p", { class: "hint" }, "Nothing is pending or firing."));
      return;
    }
    alertsBox.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "silence-alert-list" },
      h("thead", null, h("tr", null, ["rule", "group", "state", "since", ""].map((c) => h("th", null, c)))),
      h("tbody", null, alerts.map((a) => {
        // said here so nobody silences twice: the server holds back the notifications of such a group
        const by = silencedBy(a.labels ?? { ...a.group, alertname: a.rule },
          silences.filter((s) => s.state === "active"));
        return h("tr", { "data-rule": a.rule, "data-state": a.state, "data-silenced": by === null ? null : String(by) },
          h("td", null, a.rule),
          h("td", null, Object.entries(a.group ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
          h("td", null, h("span", { class: `state state-${a.state}` }, a.state),
            by === null ? null : h("span", { class: "hint silenced" }, ` · silenced (#${by})`)),
          h("td", null, a.active_since_ns ? formatTime(a.active_since_ns / 1e6) : ""),
          h("td", { class: "row-actions" }, h("button", {
            type: "button", class: "mini", "data-action": "silence",
            onclick: () => open(alertMatchers(a.rule, a.group)),
          }, "Silence…")));
      })))));
  }

  async function load(): Promise<void> {
    const answer = await loadInto(list, () => getJSON<{ silences: Silence[] }>(
      `/api/v1/silences${showExpired.checked ? "?expired=true" : ""}`, signal));
    if (answer === null) return;
    const silences = answer.silences ?? [];
    list.append(h("div", { class: "card-head" }, h("h2", null, "Silences"),
      h("label", { class: "check hint" }, showExpired, "show ended ones")));
    if (!silences.length) {
      list.append(h("p", { class: "hint", id: "no-silences" }, "No silence is in force."));
      return;
    }
    const now = Date.now();
    const message = h("p", { class: "form-error", id: "silences-error", role: "alert" });
    list.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "silence-list" },
      h("thead", null, h("tr", null, ["matchers", "state", "from", "until", "comment", "by", "scope", ""].map((c) => h("th", null, c)))),
      h("tbody", null, silences.slice().reverse().map((s) => h("tr", { "data-silence": String(s.id), "data-state": s.state },
        h("td", null, h("code", null, matchersText(s.matchers))),
        h("td", null, h("span", { class: `state state-silence-${s.state}` }, s.state)),
        h("td", null, formatTime(s.starts_ns / 1e6)),
        h("td", null, formatTime(s.ends_ns / 1e6), h("div", { class: "hint" }, relativeText(s.ends_ns, now))),
        h("td", { class: "wrap" }, s.comment || "—"),
        h("td", null, h("code", null, s.created_by)),
        h("td", null, scopeText(s.scope)),
        h("td", { class: "row-actions" }, s.state === "expired" ? null : h("button", {
          type: "button", class: "mini", "data-action": "expire",
          onclick: async () => {
            message.textContent = "";
            if (!confirm(`End the silence ${matchersText(s.matchers)} now?`)) return;
            try {
              await request(`/api/v1/silences/${s.id}`, { method: "DELETE" });
              await Promise.all([showAlerts(), load()]);
            } catch (err) {
              message.textContent = (err as Error).message;
            }
          },
        }, "Expire"))))))), message);
  }

  const given = url.searchParams.getAll("matcher").map(matcherFromParam).filter((m): m is Matcher => m !== null);
  if (given.length) open(given, url.searchParams.get("comment") ?? "");
  await Promise.all([showAlerts(), load()]);
}
