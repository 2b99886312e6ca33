// What a dashboard panel needs to know about its query text: the records behind it (for the
// search a click opens), the fields it groups by, the timechart's span and columns. Parsing
// proper stays on the server (which compiled every panel's query when the dashboard was saved);
// these helpers only split pipes outside quotes and read the few words that matter.

import { addFilter, splitPipes } from "./querytext";

export { splitPipes };

const command = (pipe: string) => (/^(\w+)/.exec(pipe)?.[1] ?? "").toLowerCase();

/**
 * The records a panel is made of: its filter and the `where` pipes that follow it directly (a
 * `stats`, `timechart` or `top` summarises them; the search shows them one by one).
 */
export function recordsQuery(q: string): string {
  const [filter, ...pipes] = splitPipes(q);
  const kept = [filter || "*"];
  for (const pipe of pipes) {
    if (command(pipe) !== "where") break;
    kept.push(pipe);
  }
  return kept.join(" | ");
}

/** The records behind one group of a summary: the panel's records with `field:value` for each
 * (a group without the field, which `stats … by` shows as "" or null: `NOT _exists_:field`). */
export function groupQuery(q: string, group: [string, unknown][]): string {
  let out = recordsQuery(q);
  for (const [field, value] of group) out = addFilter(out, field, value === "" ? null : value, false);
  return out;
}

/** The summarising pipe (`stats`, `timechart`, `top`/`rare`) and its command, or null. */
function summary(q: string): { cmd: string; text: string } | null {
  for (const pipe of splitPipes(q).slice(1)) {
    const cmd = command(pipe);
    if (["stats", "timechart", "top", "rare"].includes(cmd)) return { cmd, text: pipe };
  }
  return null;
}

/** Top-level comma-separated parts (commas inside parentheses stay). */
function commaParts(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out.filter((p) => p !== "");
}

/** The columns of an answer that are records' values, shown as they are, not rounded: the `by`
 * fields of a summarising pipe, every column without one (`| fields a, b`). */
export function valueColumns(q: string, columns: string[]): string[] {
  return summary(q) ? byFields(q) : columns;
}

/** The `by` fields of the summarising pipe (`top N field` groups by its field). */
export function byFields(q: string): string[] {
  const s = summary(q);
  if (!s) return [];
  if (s.cmd === "top" || s.cmd === "rare") {
    const m = /^\w+\s+(?:\d+\s+)?(\S+)\s*$/.exec(s.text);
    return m ? [m[1]] : [];
  }
  const m = /\sby\s+(.+)$/i.exec(s.text);
  if (!m) return [];
  return commaParts(m[1].replace(/^\((.*)\)$/, "$1"));
}

const SPAN_UNITS_S: Record<string, number> = {
  ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000,
};
const SPAN_RE = /\bspan\s*=\s*(\d+)(ns|us|ms|s|m|h|d|w|y)\b/;

/** The `span=` of a timechart query in seconds, or null when the server picks it. */
export function timechartSpan(q: string): number | null {
  const s = summary(q);
  const m = s && s.cmd === "timechart" ? SPAN_RE.exec(s.text) : null;
  return m ? Number(m[1]) * SPAN_UNITS_S[m[2]] : null;
}

/** The query with its timechart's span replaced (`text` as the language writes it: `5m`). */
export function withSpan(q: string, text: string): string {
  const parts = splitPipes(q);
  const i = parts.findIndex((p, n) => n > 0 && command(p) === "timechart");
  if (i < 0) return q;
  parts[i] = SPAN_RE.test(parts[i])
    ? parts[i].replace(SPAN_RE, `span=${text}`)
    : parts[i].replace(/^timechart\b/i, `timechart span=${text}`);
  return parts.join(" | ");
}

/** Functions whose value for a bucket without records is 0 (the others have no value there). */
const COUNTING = new Set(["count", "count_uniq", "sum", "rate"]);

/** The value columns of a timechart, each with whether an absent bucket counts as 0. */
export function timechartColumns(q: string): { name: string; zero: boolean }[] {
  const s = summary(q);
  if (!s || s.cmd !== "timechart") return [];
  const body = s.text.replace(/^timechart\b/i, "").replace(SPAN_RE, "").replace(/\sby\s+.+$/i, "");
  return commaParts(body).map((part) => {
    const alias = /\s+as\s+(\S+)$/i.exec(part);
    const call = alias ? part.slice(0, alias.index).trim() : part;
    const fn = (/^(\w+)\s*\(/.exec(call)?.[1] ?? "").toLowerCase();
    return { name: alias ? alias[1] : call.replace(/\s+/g, ""), zero: COUNTING.has(fn) };
  });
}
