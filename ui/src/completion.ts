// What the query box can suggest at the caret: a field name, a value of the field being typed, a
// pipe, a function, or nothing. Reading the text is kept to what suggestions need (the server
// parses queries and reports their errors); this only finds the token under the caret and the
// part of the query it is in, respecting quotes and /regex/.

import { pipePositions, quoteValue } from "./querytext";

export type Completion =
  | { kind: "field"; prefix: string; start: number; end: number }
  | { kind: "value"; field: string; prefix: string; start: number; end: number }
  | { kind: "pipe"; prefix: string; start: number; end: number }
  | { kind: "function"; prefix: string; start: number; end: number }
  | { kind: "none" };

export const PIPES = ["where", "fields", "sort by", "limit", "stats", "timechart", "top", "rare", "dedup",
  "patterns"];
export const FUNCTIONS = ["count", "count_uniq", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99",
  "rate", "first", "last"];

const STOP = " \t\r\n()";
const FIELD_BEFORE_PAREN = /([A-Za-z_@][\w.@-]*):\s*\($/;

/** Is the caret inside an open "phrase" of this text? Returns where its quote is, or -1. */
function openQuote(text: string): number {
  let at = -1;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') at = at < 0 ? i : -1;
  }
  return at;
}

/** The `(` enclosing `pos` (from `from` on), or -1. */
function unclosedParen(q: string, from: number, pos: number): number {
  let depth = 0;
  for (let i = pos - 1; i >= from; i--) {
    if (q[i] === ")") depth++;
    else if (q[i] === "(" && depth-- === 0) return i;
  }
  return -1;
}

function filterCompletion(q: string, from: number, caret: number): Completion {
  const before = q.slice(from, caret);
  const quoteAt = openQuote(before);
  if (quoteAt >= 0) {
    const m = /([A-Za-z_@][\w.@-]*):$/.exec(before.slice(0, quoteAt));
    if (!m) return { kind: "none" };
    let end = caret;
    while (end < q.length && q[end] !== '"') end++;
    return { kind: "value", field: m[1], prefix: before.slice(quoteAt + 1), start: from + quoteAt,
      end: Math.min(q.length, end + 1) };
  }
  let start = caret;
  while (start > from && !STOP.includes(q[start - 1])) start--;
  let end = caret;
  while (end < q.length && !STOP.includes(q[end])) end++;
  let token = q.slice(start, caret);
  if (token.startsWith("-") || token.startsWith("+")) {
    token = token.slice(1);
    start++;
  }
  const colon = token.indexOf(":");
  if (colon > 0) {
    const field = token.slice(0, colon);
    const rest = token.slice(colon + 1);
    const op = /^(?:>=|<=|>|<)?/.exec(rest)?.[0] ?? "";
    return { kind: "value", field, prefix: rest.slice(op.length), start: start + colon + 1 + op.length, end };
  }
  const open = unclosedParen(q, from, start);
  const paren = open >= 0 ? FIELD_BEFORE_PAREN.exec(q.slice(from, open + 1)) : null;
  if (paren) return { kind: "value", field: paren[1], prefix: token, start, end };
  return { kind: "field", prefix: token, start, end };
}

/** What to suggest at `caret` in `q`. */
export function completionAt(q: string, caret: number): Completion {
  const pipes = pipePositions(q).filter((p) => p < caret);
  if (!pipes.length) return filterCompletion(q, 0, caret);
  const segStart = pipes[pipes.length - 1] + 1;
  const seg = q.slice(segStart, caret);
  const lead = seg.length - seg.trimStart().length;
  const body = seg.trimStart();
  const command = /^(\w+)/.exec(body)?.[1]?.toLowerCase() ?? "";
  let end = caret;
  while (end < q.length && !STOP.includes(q[end]) && q[end] !== "|" && q[end] !== ",") end++;
  if (!/\s/.test(body)) return { kind: "pipe", prefix: body, start: segStart + lead, end };
  if (command === "where") {
    const filterStart = segStart + lead + command.length;
    return filterCompletion(q, filterStart, caret);
  }
  let start = caret;
  while (start > segStart && !STOP.includes(q[start - 1]) && q[start - 1] !== ",") start--;
  const prefix = q.slice(start, caret);
  const field = { kind: "field" as const, prefix, start, end };
  if (command === "stats" || command === "timechart") {
    if (q[start - 1] === "(" || /\sby\s+[^|]*$/i.test(seg)) return field;
    if (/^span=?$|^\d/.test(prefix) || /\bas\s+\S*$/i.test(seg)) return { kind: "none" };
    return { kind: "function", prefix, start, end };
  }
  if (command === "top" || command === "rare") return /^\d+$/.test(prefix) ? { kind: "none" } : field;
  if (["fields", "dedup", "sort"].includes(command)) {
    return prefix.toLowerCase() === "by" ? { kind: "none" } : field;
  }
  return { kind: "none" };
}

/** The text a suggestion inserts: `field:`, a value quoted as the language needs, `pipe `, `fn(`. */
export function insertion(c: Completion, chosen: string | number | boolean): string {
  switch (c.kind) {
    case "field":
      return `${chosen}:`;
    case "value":
      return `${quoteValue(chosen)} `;
    case "pipe":
      return `${chosen} `;
    case "function":
      return `${chosen}(`;
    default:
      return String(chosen);
  }
}

/** `q` with the completed token replaced by `text`, and where the caret goes. */
export function applyCompletion(q: string, c: Completion, text: string): { q: string; caret: number } {
  if (c.kind === "none") return { q, caret: q.length };
  const out = q.slice(0, c.start) + text + q.slice(c.end);
  return { q: out, caret: c.start + text.length };
}

/** The field a "did you mean" fixes: `old` at `position` replaced by `name` (or `q` unchanged). */
export function replaceField(q: string, position: number, old: string, name: string): string {
  if (q.slice(position, position + old.length) !== old) return q;
  return q.slice(0, position) + name + q.slice(position + old.length);
}

/** Names in a field context matched by a prefix: exact prefix first, then any part containing it. */
export function rank(names: string[], prefix: string, max = 12): string[] {
  const p = prefix.toLowerCase();
  const starts = names.filter((n) => n.toLowerCase().startsWith(p));
  const inside = names.filter((n) => !n.toLowerCase().startsWith(p) && n.toLowerCase().includes(p));
  return [...starts, ...inside].slice(0, max);
}
