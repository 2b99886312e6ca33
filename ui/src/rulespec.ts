// What the alert rule form reads from a rule and from the server's answers, apart from the DOM
// (unit-tested in node): the condition as the form's fields, which field a validation message
// names, which stored options the form has no field for.

import type { Row } from "./api";

/** The form's fields that a server message can name (`condition: …`, `interval must be …`). */
const FIELDS = ["name", "query", "condition", "window", "interval", "for", "group_by", "labels", "channels"];

/** Which field a validation message is about: its `field:` prefix, or a field name opening it. */
export function fieldOf(message: string): string | null {
  const m = /^\s*([a-z_]+)(?:\.[\w.]+)?\s*:/.exec(message) ?? /^\s*([a-z_]+)\b/.exec(message);
  if (!m) return null;
  const name = m[1] === "for_" ? "for" : m[1];
  return FIELDS.includes(name) ? name : null;
}

/** A condition as the form edits it, from the stored text or object. */
export function conditionParts(c: unknown): { kind: string; numerator: string; column: string; op: string;
  threshold: string } | null {
  const text = typeof c === "string" ? c.trim() : null;
  const obj = c && typeof c === "object" ? (c as Row) : null;
  if (text === "absent" || obj?.type === "absence") return { kind: "absent", numerator: "", column: "", op: ">", threshold: "0" };
  if (obj && ["count", "ratio", "value", "clock_skew"].includes(String(obj.type)) && obj.op && obj.threshold !== undefined) {
    return { kind: String(obj.type), numerator: String(obj.numerator ?? ""), column: String(obj.column ?? ""),
      op: String(obj.op), threshold: String(obj.threshold) };
  }
  if (text === null) return null;
  const m = /^(.*?)\s*(>=|<=|>|<)\s*(-?[\d.eE+]+)$/s.exec(text);
  if (!m) return null;
  const lhs = m[1].trim();
  const ratio = /^ratio\s*\((.*)\)$/s.exec(lhs);
  if (lhs === "count") return { kind: "count", numerator: "", column: "", op: m[2], threshold: m[3] };
  if (lhs === "clock_skew") return { kind: "clock_skew", numerator: "", column: "", op: m[2], threshold: m[3] };
  if (ratio) return { kind: "ratio", numerator: ratio[1].trim(), column: "", op: m[2], threshold: m[3] };
  if (/^[\w.]+$/.test(lhs)) return { kind: "value", numerator: "", column: lhs, op: m[2], threshold: m[3] };
  return null;
}

/** The form's own keys; anything else a stored rule holds is kept as it is. */
const FORM_KEYS = ["name", "query", "condition", "window", "interval", "for", "group_by", "labels", "channels", "enabled"];
/** Options at their defaults say nothing worth listing. */
const DEFAULTS: Row = { description: "", delay: "0s", repeat_interval: null, max_notifications_per_hour: 20 };

/** The stored options the form has no field for and that differ from their defaults. */
export function keptOptions(spec: Row): string[] {
  return Object.keys(spec).filter((k) => {
    if (FORM_KEYS.includes(k)) return false;
    const v = spec[k];
    if (v === null || v === undefined || v === "" || v === DEFAULTS[k]) return false;
    return !(typeof v === "object" && !Object.keys(v as object).length);
  });
}

/** The value of the group nearest to firing under `op` (the largest for > and >=, the smallest for
 * < and <=): what the preview chart draws against the threshold. No group with a value: 0 (a
 * count over no records), unless there is no group at all and the op looks down (null). */
export function worstValue(values: (number | null)[], op: string): number | null {
  const nums = values.filter((v): v is number => typeof v === "number");
  if (!nums.length) return op.startsWith("<") ? null : 0;
  return op.startsWith("<") ? Math.min(...nums) : Math.max(...nums);
}

/** What the API refuses in a clock_skew rule (server features/alerts/conditions.py and rules.py),
 * in its words, each naming its field: the form says it before asking the server. */
export function clockSkewProblems(rule: { query: string; op: string; threshold: string; group_by: string[] }): string[] {
  const out: string[] = [];
  const ms = rule.threshold.trim() === "" ? 0 : Number(rule.threshold);
  if (![">", ">="].includes(rule.op) || !Number.isFinite(ms) || ms < 0) {
    out.push("condition: a clock_skew condition is 'clock_skew > <ms>' (a threshold of 0 or more)");
  }
  if ((rule.query.trim() || "*") !== "*") out.push("query: a clock_skew rule's query is '*' (it reads the clock offsets)");
  if (rule.group_by.length) out.push("group_by: a clock_skew rule has one alert per clock");
  return out;
}
