// One alert rule's record, under the rules list of the Alerts page: its last evaluation (when,
// how long, the error if it failed, runs skipped), its state history (GET /api/v1/alerts/history
// ?rule=) and who was notified (GET /api/v1/alerts/notifications?rule=: channel, firing or
// resolved, and what came of it — sent, failed with the error, silenced, rate-limited).

import { getJSON, type Row } from "../api";
import { h } from "../dom";
import { formatTime } from "../timerange";

export interface RuleStatus {
  name: string;
  enabled: boolean;
  last_eval_ns: number | null;
  last_duration_ms?: number | null;
  last_error: string | null;
  skipped_runs?: number | null;
  states: Record<string, number>;
}

interface Transition {
  group_key: string;
  from_state: string;
  to_state: string;
  value: number | null;
  time_ns: number;
}

interface Notification {
  channel: string;
  kind: string;
  status: string;
  attempts: number;
  created_ns: number;
  delivered_ns: number | null;
  error: string | null;
  alert: Row;
}

const HISTORY_SHOWN = 50;

/** `{"instance":"a"}` → `instance=a`; no group → `all`. */
export function groupLabel(key: string): string {
  try {
    const g = JSON.parse(key) as Record<string, unknown>;
    return Object.entries(g).map(([k, v]) => `${k}=${v}`).join(", ") || "all";
  } catch {
    return key;
  }
}

const when = (ns: number | null | undefined) => (ns ? formatTime(ns / 1e6) : "—");
const state = (s: string) => h("span", { class: `state state-${s}` }, s);

/** The detail section for `rule`; loads its history and notifications. */
export async function ruleDetail(rule: RuleStatus, signal: AbortSignal): Promise<HTMLElement> {
  const q = encodeURIComponent(rule.name);
  const [history, notes] = await Promise.all([
    getJSON<{ history: Transition[] }>(`/api/v1/alerts/history?rule=${q}&limit=${HISTORY_SHOWN}`, signal),
    getJSON<{ notifications: Notification[] }>(`/api/v1/alerts/notifications?rule=${q}&limit=${HISTORY_SHOWN}`, signal),
  ]);
  const evaluation = h("dl", { class: "rule-eval", id: "rule-eval" },
    h("dt", null, "last evaluated"), h("dd", { id: "rule-last-eval" }, rule.last_eval_ns
      ? `${when(rule.last_eval_ns)}${typeof rule.last_duration_ms === "number" ? ` (took ${rule.last_duration_ms.toFixed(0)} ms)` : ""}`
      : rule.enabled ? "not yet" : "never (disabled)"),
    h("dt", null, "result"), rule.last_error
      ? h("dd", { class: "form-error", id: "rule-last-error" }, rule.last_error)
      : h("dd", { id: "rule-last-error", "data-ok": "true" }, rule.last_eval_ns ? "no error" : "—"),
    rule.skipped_runs ? h("dt", null, "runs skipped") : null,
    rule.skipped_runs ? h("dd", null, String(rule.skipped_runs), h("span", { class: "hint" },
      " (an evaluation took longer than the interval, or the server was down)")) : null);
  const rows = history.history ?? [];
  const historyBox = rows.length
    ? h("div", { class: "table-box" }, h("table", { class: "grid", id: "rule-history" },
      h("thead", null, h("tr", null, ["when", "group", "change", "value"].map((c) => h("th", { class: c === "value" ? "num" : "" }, c)))),
      h("tbody", null, rows.map((t) => h("tr", { "data-to": t.to_state, "data-from": t.from_state },
        h("td", { class: "nowrap" }, when(t.time_ns)),
        h("td", null, groupLabel(t.group_key)),
        h("td", { class: "nowrap" }, state(t.from_state), " → ", state(t.to_state)),
        h("td", { class: "num" }, t.value === null ? "—" : String(+t.value.toFixed(4))))))))
    : h("p", { class: "hint", id: "rule-history-empty" }, "No state changes yet: the rule has not fired.");
  const sent = notes.notifications ?? [];
  const notesBox = sent.length
    ? h("div", { class: "table-box" }, h("table", { class: "grid", id: "rule-notifications" },
      h("thead", null, h("tr", null, ["when", "channel", "alert", "result", "tries", ""].map((c) => h("th", { class: c === "tries" ? "num" : "" }, c)))),
      h("tbody", null, sent.map((n) => h("tr", { "data-channel": n.channel, "data-status": n.status, "data-kind": n.kind },
        h("td", { class: "nowrap" }, when(n.delivered_ns ?? n.created_ns)),
        h("td", null, n.channel),
        h("td", null, n.kind),
        h("td", null, h("span", { class: `notify notify-${n.status}` }, n.status)),
        h("td", { class: "num" }, String(n.attempts)),
        h("td", { class: "why" }, n.error ? h("span", { class: "form-error" }, n.error) : ""))))))
    : h("p", { class: "hint", id: "rule-notifications-empty" },
      rule.states && Object.keys(rule.states).length ? "Nobody was notified (the rule has no channels, or nothing fired)."
        : "Nobody was notified yet.");
  return h("section", { class: "card rule-detail", id: "rule-detail", "data-rule": rule.name },
    h("h2", null, `Rule “${rule.name}”`),
    h("h3", null, "Last evaluation"), evaluation,
    h("h3", null, "State history"), historyBox,
    h("h3", null, "Who was notified"), notesBox);
}
