// Small edits of query text done in the browser: adding `field:value` / `NOT field:value` from a
// click, and finding the words to highlight. Parsing proper stays on the server, which also
// reports errors with their position; these helpers only need to respect quotes.

const SIMPLE_VALUE = /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/;
const FIELD_NAME = /^[A-Za-z_@][A-Za-z0-9_.@-]*$/;
const KEYWORDS = new Set(["AND", "OR", "NOT", "TO"]);

/** Can a click on this field add a filter? (names the query language reads without escaping) */
export function isFilterable(field: string): boolean {
  return FIELD_NAME.test(field);
}

/** A value as the query language reads it exactly: numbers bare, words bare, the rest quoted. */
export function quoteValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = value === null || value === undefined ? "" : String(value);
  if (SIMPLE_VALUE.test(text) && !KEYWORDS.has(text.toUpperCase())) return text;
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Index of the first `|` outside quotes and /regex/ (where the pipes start), or -1. */
export function pipeIndex(q: string): number {
  let quote = false;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (c === "\\") {
      i++;
    } else if (c === '"') {
      quote = !quote;
    } else if (c === "|" && !quote) {
      return i;
    }
  }
  return -1;
}

/** `q` with one more condition AND-ed into its filter part (before any pipes). */
export function addFilter(q: string, field: string, value: unknown, negate: boolean): string {
  const term = `${negate ? "NOT " : ""}${field}:${quoteValue(value)}`;
  const cut = pipeIndex(q);
  const filter = (cut < 0 ? q : q.slice(0, cut)).trim();
  const pipes = cut < 0 ? "" : " " + q.slice(cut).trim();
  if (filter === "" || filter === "*") return term + pipes;
  if (filter.includes(term)) return q;
  const wrapped = /\bOR\b/i.test(filter) ? `(${filter})` : filter;
  return `${wrapped} AND ${term}${pipes}`;
}

/** Split the filter part into tokens, keeping quoted phrases and parentheses apart. */
function tokens(filter: string): string[] {
  const out: string[] = [];
  const re = /"(?:[^"\\]|\\.)*"|\(|\)|[^\s()"]+(?:"(?:[^"\\]|\\.)*")?/g;
  for (const m of filter.matchAll(re)) out.push(m[0]);
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function unquote(text: string): string {
  return text.startsWith('"') && text.endsWith('"') && text.length >= 2
    ? text.slice(1, -1).replace(/\\(.)/g, "$1")
    : text;
}

/**
 * The words and phrases a query searches for in `message` (bare terms and `message:` values,
 * not the negated ones), as one regex for highlighting; null when there are none.
 */
export function highlightPattern(q: string): RegExp | null {
  const cut = pipeIndex(q);
  const filter = cut < 0 ? q : q.slice(0, cut);
  const parts: string[] = [];
  let negated = false;
  for (const tok of tokens(filter)) {
    const upper = tok.toUpperCase();
    if (upper === "NOT") {
      negated = true;
      continue;
    }
    if (tok === "(" || tok === ")" || KEYWORDS.has(upper)) {
      negated = false;
      continue;
    }
    let term = tok;
    if (term.startsWith("-")) {
      negated = false;
      continue;
    }
    if (term.startsWith("+")) term = term.slice(1);
    const colon = /^([A-Za-z_@][\w.@-]*):(.*)$/.exec(term);
    if (colon) {
      if (colon[1] !== "message") {
        negated = false;
        continue;
      }
      term = colon[2];
    }
    if (!negated && term && term !== "*" && !/^\/.*\/$/.test(term)) {
      const text = unquote(term);
      if (text) {
        // wildcards become "word characters"; a bare word matches as a whole token (as search does)
        const body = escapeRegExp(text).replace(/\\\*/g, "\\w*").replace(/\\\?/g, "\\w");
        parts.push(term.startsWith('"') ? body : `(?<![\\p{L}\\p{N}])${body}(?![\\p{L}\\p{N}])`);
      }
    }
    negated = false;
  }
  if (!parts.length) return null;
  return new RegExp(parts.join("|"), "gu");
}
