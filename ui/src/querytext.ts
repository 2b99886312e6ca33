// Small edits of query text done in the browser: adding `field:value` / `NOT field:value` from a
// click, and finding the words to highlight. Parsing proper stays on the server, which also
// reports errors with their position; these helpers only need to respect quotes.

const SIMPLE_VALUE = /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/;
// a field name as the server's lexer reads it (server/features/query/lexer.py FIELD_NAME): parts
// joined by dots, each bare (any non-ASCII character but a space counts as a letter) or in backticks
const QUOTED = "`(?:[^`\\\\]|\\\\[\\s\\S])*`";
const START = "(?:[A-Za-z_@]|[^\\x00-\\x7f\\s])";
const CHAR = "(?:[A-Za-z0-9_@-]|[^\\x00-\\x7f\\s])";
const FIELD_NAME = new RegExp(`^(?:${QUOTED}|${START}${CHAR}*)(?:\\.(?:${QUOTED}|${CHAR}+))*$`, "u");
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

/** Characters after which a new token starts (a `/` there may open a regex). */
const TOKEN_START = new Set([" ", "\t", "\r", "\n", "(", ":", "-", "+", "|", "!"]);

/**
 * The end of a `/regex/` opening at `start` (the index after its closing `/`), or -1 when the
 * `/` is not a regex: as the server's lexer reads it, a regex is closed by a `/` followed by a
 * space, `)`, `|` or the end (so `path:/api/orders*` is a path).
 */
export function regexEnd(q: string, start: number): number {
  for (let i = start + 1; i < q.length; i++) {
    if (q[i] === "\\") {
      i++;
    } else if (q[i] === "/") {
      const next = q[i + 1];
      return next === undefined || " \t\r\n)|".includes(next) ? i + 1 : -1;
    }
  }
  return -1;
}

/** Indexes of every `|` that starts a pipe: outside quotes and outside `/regex/`. */
export function pipePositions(q: string): number[] {
  const out: number[] = [];
  let quote = false;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (c === "\\") {
      i++;
    } else if (c === '"') {
      quote = !quote;
    } else if (quote) {
      continue;
    } else if (c === "/" && (i === 0 || TOKEN_START.has(q[i - 1]))) {
      const end = regexEnd(q, i);
      if (end > 0) i = end - 1;
    } else if (c === "|") {
      out.push(i);
    }
  }
  return out;
}

/** Index of the first `|` outside quotes and /regex/ (where the pipes start), or -1. */
export function pipeIndex(q: string): number {
  return pipePositions(q)[0] ?? -1;
}

/** The query cut at every pipe: the filter first, then each pipe's text (trimmed). */
export function splitPipes(q: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (const at of pipePositions(q)) {
    parts.push(q.slice(start, at).trim());
    start = at + 1;
  }
  parts.push(q.slice(start).trim());
  return parts;
}

/** The filter part of a query (before its first pipe), or `*`. */
export function filterPart(q: string): string {
  const cut = pipeIndex(q);
  return (cut < 0 ? q : q.slice(0, cut)).trim() || "*";
}

/**
 * The condition a click adds: `field:value` (the value quoted as needed), or `NOT field:value`;
 * a null or absent value (a group without the field) is `NOT _exists_:field` (`_exists_:field`).
 * `field` must already be a name the language reads (fieldnames.ts builds them from keys).
 */
export function filterTerm(field: string, value: unknown, negate: boolean): string {
  if (value === null || value === undefined) return `${negate ? "" : "NOT "}_exists_:${field}`;
  return `${negate ? "NOT " : ""}${field}:${quoteValue(value)}`;
}

/** `q` with one more condition AND-ed into its filter part (before any pipes). */
export function addFilter(q: string, field: string, value: unknown, negate: boolean): string {
  const term = filterTerm(field, value, negate);
  const cut = pipeIndex(q);
  const filter = (cut < 0 ? q : q.slice(0, cut)).trim();
  const pipes = cut < 0 ? "" : " " + q.slice(cut).trim();
  if (filter === "" || filter === "*") return term + pipes;
  // the same term already AND-ed in (a second click): as a whole term, not as a part of another
  // (`service:api` is not in `service:api-gw`, `x:1` is not in `NOT x:1`)
  if (filter === term || filter.startsWith(`${term} AND `) || filter.endsWith(` AND ${term}`) ||
    filter.includes(` AND ${term} AND `)) return q;
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
  return new RegExp(parts.join("|"), "giu");
}
