// Alerts: the active alerts, the rules with their state, one rule's record (last evaluation and its
// error, state history, who was notified) and a form for a rule with a live preview. The page (and
// its link) appears only when the server answers GET /api/v1/alerts/rules. The server validates
// every rule and its message is shown beside the field it names; writing needs an admin key.

import "./alerts.css";
import { silenceUrl } from "../admin";
import { getJSON, request, type Row } from "../api";
import { ruleDetail, type RuleStatus } from "../components/ruledetail";
import { type RuleForm, ruleForm } from "../components/ruleform";
import { clear, h } from "../dom";
import { addFilter } from "../querytext";
import { link, navigate, type Page, reflect } from "../router";
import { searchUrl } from "../searchurl";
import { formatTime } from "../timerange";
import { isAdmin, whoami } from "../whoami";

interface Alert {
  rule: string;
  group: Record<string, unknown>;
  state: string;
  value: number | null;
  details?: Record<string, unknown> | null;
  active_since_ns: number | null;
}

const num = (v: unknown): string => (typeof v === "number" ? String(+v.toFixed(4)) : String(v ?? ""));

/** What the condition saw besides the value: an anomaly's baseline, a new pattern's template. */
export function detailsText(d: Record<string, unknown> | null | undefined): string {
  if (!d) return "";
  if (d.median !== undefined) {
    const base = Array.isArray(d.baseline) ? ` over ${d.baseline.length} earlier windows` : "";
    return `median ${num(d.median)}, MAD ${num(d.mad)}, k ${num(d.k)}${base}`;
  }
  if (typeof d.template === "string") return `new pattern: ${d.template}`;
  return "";
}

type Rule = RuleStatus & { spec: Row };

const TEMPLATE: Row = {
  name: "",
  query: "service:checkout",
  condition: "ratio(status:>=500) > 0.05",
  window: "5m",
  interval: "1m",
  for: "2m",
  group_by: [],
  labels: { severity: "page" },
  channels: [],
  enabled: true,
};

function conditionText(c: unknown): string {
  if (typeof c === "string") return c;
  if (!c || typeof c !== "object") return "";
  const cond = c as Row;
  if (cond.type === "absence") return "absent";
  if (cond.type === "new_pattern") return `new_pattern (level >= ${cond.min_level}, learning ${cond.learning})`;
  if (cond.type === "anomaly") {
    const of = cond.metric === "ratio" ? `ratio(${cond.numerator})` : cond.metric === "value" ? String(cond.column) : "count";
    const over = cond.baseline === "same_hour" ? "days" : "periods";
    return `anomaly(${of}) ${cond.direction} > ${cond.k} MAD over ${cond.periods} ${over}`;
  }
  const lhs = cond.type === "ratio" ? `ratio(${cond.numerator})` : cond.type === "value" ? String(cond.column) : "count";
  return `${lhs} ${cond.op} ${cond.threshold}`;
}

/** The rule's state in one word: firing beats pending beats everything else. */
function stateOf(rule: Rule): string {
  if (!rule.enabled) return "disabled";
  for (const s of ["firing", "pending"]) if ((rule.states?.[s] ?? 0) > 0) return s;
  return rule.last_eval_ns ? "ok" : "not evaluated";
}

async function writeRule(method: "PUT" | "DELETE", name: string, body?: unknown): Promise<void> {
  await request(`/api/v1/alerts/rules/${encodeURIComponent(name)}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
  });
}

/** How often the page reloads states (an on-call screen stays current without a click). */
const REFRESH_MS = 15_000;

export function alertsPage(): Page {
  let controller: AbortController | null = null;
  let timer: number | undefined;
  let form: RuleForm | null = null;
  return {
    async mount(root, url) {
      document.title = "Alerts · logharbor";
      const list = h("section", { class: "card", id: "alerts" }, h("p", { class: "hint" }, "Loading…"));
      const active = h("section", { class: "card", id: "active-alerts" });
      const editorBox = h("div", { id: "rule-editor-box" });
      const detailBox = h("div", { id: "rule-detail-box" });
      const newButton = h("button", { type: "button", class: "primary", id: "new-rule" }, "New rule");
      root.append(h("div", { class: "page alerts-page" },
        h("div", { class: "toolbar" }, h("h1", null, "Alerts"), newButton), active, editorBox, list, detailBox));
      let selected: string | null = url.searchParams.get("rule");

      function edit(name: string | null, spec: Row) {
        form?.destroy();
        clear(editorBox);
        const close = () => {
          form?.destroy();
          form = null;
          clear(editorBox);
        };
        form = ruleForm(name, spec, (saved) => {
          close();
          select(saved);
          void load();
        }, close);
        editorBox.append(form.el);
        form.el.scrollIntoView({ block: "start" });
        (form.el.querySelector("#rule-name") as HTMLInputElement | null)?.focus();
      }
      newButton.addEventListener("click", () => edit(null, TEMPLATE));

      /** Show one rule's record under the list (kept in the URL as ?rule=). */
      function select(name: string | null) {
        selected = name;
        reflect(name ? `/ui/alerts?${new URLSearchParams({ rule: name })}` : "/ui/alerts", false);
      }

      async function showDetail(rules: Rule[], signal: AbortSignal) {
        const rule = rules.find((r) => r.name === selected);
        for (const tr of list.querySelectorAll<HTMLElement>("#rules tr[data-rule]")) {
          tr.classList.toggle("selected", tr.dataset.rule === selected);
        }
        if (!rule) {
          clear(detailBox);
          return;
        }
        try {
          const el = await ruleDetail(rule, signal);
          clear(detailBox);
          detailBox.append(el);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          clear(detailBox);
          detailBox.append(h("p", { class: "form-error" }, (err as Error).message));
        }
      }

      /** Pending and firing alert groups, each with a link to the records behind it. */
      async function showActive(rules: Rule[], signal: AbortSignal) {
        clear(active);
        active.append(h("h2", null, "Active alerts"));
        let alerts: Alert[];
        try {
          alerts = (await getJSON<{ alerts: Alert[] }>("/api/v1/alerts", signal)).alerts ?? [];
        } catch (err) {
          active.append(h("p", { class: "form-error" }, (err as Error).message));
          return;
        }
        if (!alerts.length) {
          active.append(h("p", { class: "hint" }, "Nothing is pending or firing."));
          return;
        }
        const specs = new Map(rules.map((r) => [r.name, r.spec ?? {}]));
        active.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "active" },
          h("thead", null, h("tr", null, ["rule", "group", "state", "value", "why", "since", ""].map((c) => h("th", null, c)))),
          h("tbody", null, alerts.map((a) => {
            const spec = specs.get(a.rule) ?? {};
            let q = String(spec.query ?? "*");
            for (const [field, value] of Object.entries(a.group ?? {})) q = addFilter(q, field, value === "" ? null : value, false);
            const group = Object.entries(a.group ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");
            return h("tr", { "data-rule": a.rule, "data-state": a.state },
              h("td", null, a.rule),
              h("td", null, group || "—"),
              h("td", null, h("span", { class: `state state-${a.state}` }, a.state)),
              h("td", { class: "num" }, a.value === null ? "" : String(+a.value.toFixed(4))),
              h("td", { class: "why" }, detailsText(a.details)),
              h("td", null, a.active_since_ns ? formatTime(a.active_since_ns / 1e6) : ""),
              h("td", null, link(searchUrl(q, { from: `now-${spec.window ?? "1h"}`, to: "now" }), "records →"),
                // admins silence the group from here (Settings › Silences, the form filled in)
                isAdmin(whoami()) ? h("button", { type: "button", class: "mini silence-link", title: "Silence this group",
                  onclick: () => navigate(silenceUrl(a.rule, a.group)) }, "Silence…") : null));
          })))));
      }

      async function load() {
        controller?.abort();
        controller = new AbortController();
        let rules: Rule[];
        try {
          rules = (await getJSON<{ rules: Rule[] }>("/api/v1/alerts/rules", controller.signal)).rules ?? [];
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          clear(list);
          list.append(h("p", { class: "form-error" }, (err as Error).message));
          return;
        }
        clear(list);
        await showActive(rules, controller.signal);
        list.append(h("h2", null, "Rules"));
        if (!rules.length) {
          list.append(h("p", { class: "hint" }, "No alert rules yet."));
          clear(detailBox);
          return;
        }
        const message = h("p", { class: "form-error", id: "alerts-error", role: "alert" });
        const act = (fn: () => Promise<void>) => async () => {
          message.textContent = "";
          try {
            await fn();
            await load();
          } catch (err) {
            message.textContent = (err as Error).message;
          }
        };
        list.append(h("div", { class: "table-box" }, h("table", { class: "grid rules", id: "rules" },
          h("thead", null, h("tr", null, ["name", "state", "query", "condition", "window", "for", "channels",
            "last evaluated", ""].map((c) => h("th", null, c)))),
          h("tbody", null, rules.map((rule) => {
            const spec = rule.spec ?? {};
            const state = stateOf(rule);
            const counts = Object.entries(rule.states ?? {}).filter(([, n]) => n > 0)
              .map(([s, n]) => `${n} ${s}`).join(", ");
            return h("tr", { "data-rule": rule.name, "data-state": state },
              h("td", null, h("button", { type: "button", class: "link rule-open", "data-action": "open",
                title: "last evaluation, state history, who was notified",
                onclick: () => { select(rule.name); void load(); } }, rule.name)),
              h("td", null, h("span", { class: `state state-${state.replace(/\s+/g, "-")}` }, state),
                counts ? h("span", { class: "hint" }, ` (${counts})`) : null),
              h("td", null, link(searchUrl(String(spec.query ?? "*"), { from: `now-${spec.window ?? "1h"}`, to: "now" }),
                h("code", null, String(spec.query ?? "")))),
              h("td", null, h("code", null, conditionText(spec.condition))),
              h("td", null, String(spec.window ?? "")),
              h("td", null, String(spec.for ?? "")),
              h("td", null, Array.isArray(spec.channels) ? spec.channels.join(", ") : ""),
              h("td", null, rule.last_eval_ns ? formatTime(rule.last_eval_ns / 1e6) : "—",
                rule.last_error ? h("div", { class: "form-error" }, rule.last_error) : null),
              h("td", { class: "row-actions" },
                h("button", { type: "button", class: "mini", "data-action": "edit",
                  onclick: () => edit(rule.name, { ...spec, name: rule.name, enabled: rule.enabled }) }, "Edit"),
                h("button", {
                  type: "button", class: "mini", "data-action": "toggle",
                  onclick: act(() => writeRule("PUT", rule.name, { ...spec, enabled: !rule.enabled })),
                }, rule.enabled ? "Disable" : "Enable"),
                h("button", {
                  type: "button", class: "mini", "data-action": "delete",
                  onclick: act(async () => {
                    if (confirm(`Delete the rule “${rule.name}” and its alert states?`)) await writeRule("DELETE", rule.name);
                  }),
                }, "Delete")));
          })))), message);
        await showDetail(rules, controller.signal);
      }
      await load();
      timer = window.setInterval(() => void load(), REFRESH_MS);
    },
    unmount() {
      controller?.abort();
      form?.destroy();
      window.clearInterval(timer);
    },
  };
}
