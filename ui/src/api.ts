// Every call to the server goes through here: it adds the key and turns a 401 into a trip back
// to the login form, so no page has to handle an expired or revoked key on its own.

import { clearKey, getKey } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly position: number | null = null,
    /** the body's `error.detail` (a rule's refusal: `{fields: [{field, message}]}`) */
    readonly detail: unknown = null,
  ) {
    super(message);
  }
}

export class Unauthorized extends ApiError {}

/** What the user reads when no answer came at all (server down, network gone): the browser's own
 * words ("Failed to fetch", "NetworkError when attempting to fetch resource.") say neither. */
export const UNREACHABLE = "The server cannot be reached: check that it is running and that this computer is online.";

/** fetch() failed before any answer (not an HTTP error, not an abort the page asked for). */
export class Unreachable extends Error {
  override name = "Unreachable";

  constructor(message = UNREACHABLE) {
    super(message);
  }
}

/** fetch() as the browser does it, with a failed connection turned into {@link Unreachable}. */
export async function reach(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, init);
  } catch (err) {
    if ((err as Error)?.name === "AbortError") throw err;
    throw new Unreachable();
  }
}

let onUnauthorized: () => void = () => undefined;

/** Set by the app shell: where a 401 sends the user. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export function authHeaders(key: string | null = getKey()): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function failure(response: Response, background = false): Promise<ApiError> {
  let code = "http_" + response.status;
  let message = response.statusText || `HTTP ${response.status}`;
  let position: number | null = null;
  let detail: unknown = null;
  try {
    const body = await response.json();
    const err = body?.error;
    if (err && typeof err === "object") {
      code = String(err.code ?? code);
      message = String(err.message ?? message);
      position = typeof err.position === "number" ? err.position : null;
      detail = err.detail ?? null;
    }
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 401 && !background) {
    clearKey();
    onUnauthorized();
    return new Unauthorized(401, code, message);
  }
  return new ApiError(response.status, code, message, position, detail);
}

/**
 * fetch() with the key; throws ApiError for any non-2xx answer. A `background` call (suggestions
 * fetched while typing) leaves a 401 to the next thing the user asks for, so typing in the box is
 * never interrupted by a trip to the login form.
 */
export async function request(path: string, init: RequestInit = {}, background = false): Promise<Response> {
  const headers = { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  const response = await reach(path, { ...init, headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await failure(response, background);
  return response;
}

export async function getJSON<T>(path: string, signal?: AbortSignal, background = false): Promise<T> {
  const response = await request(path, { signal, headers: { Accept: "application/json" } }, background);
  return (await response.json()) as T;
}

/**
 * getJSON for answers that carry record values (trace records, field values): a number stays the
 * text the server wrote (ExactNumber), as in runQuery; JSON.parse rounded 18446744073709551617 to
 * ...552000 and made -0.0 0, shown so and filtered by (finding other records).
 */
export async function getExactJSON<T>(path: string, signal?: AbortSignal, background = false): Promise<T> {
  const response = await request(path, { signal, headers: { Accept: "application/json" } }, background);
  return parseExact(await response.text()) as T;
}

/** POST a JSON body; `exact`: the answer carries record values (parseExact, as getExactJSON). */
export async function postJSON<T>(path: string, body: unknown, signal?: AbortSignal, exact = false): Promise<T> {
  const response = await request(path, {
    method: "POST",
    signal,
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/json" },
  });
  return (exact ? parseExact(await response.text()) : await response.json()) as T;
}

export type Row = Record<string, unknown>;

/**
 * A number whose text a JavaScript number would change, kept as the server wrote it: an integer
 * beyond 2^53 (18446744073709551617 rounds to ...552000), `-0.0` (String(-0) is "0"), a float
 * written whole (`1.0`, `1e+16` read as 1 and 10000000000000000, like integers). Showing,
 * copying or filtering by it uses its text; arithmetic uses its value (valueOf, toFixed). Whatever
 * prints values knows this type (valueText, jsonText); whatever computes reads {@link num}.
 */
export class ExactNumber {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }

  valueOf(): number {
    return Number(this.text);
  }

  toFixed(digits?: number): string {
    return (+this).toFixed(digits);
  }

  toLocaleString(locales?: string, options?: Intl.NumberFormatOptions): string {
    return (+this).toLocaleString(locales, options);
  }
}

/** A finite number to compute with (a chart, a width), an ExactNumber's value too; else null. */
export function num(v: unknown): number | null {
  const n = typeof v === "number" || v instanceof ExactNumber ? +v : NaN;
  return Number.isFinite(n) ? n : null;
}

/** A value a click can filter on: not null, an object or an array (an ExactNumber is a number). */
export function isScalar(v: unknown): boolean {
  return v !== null && v !== undefined && (typeof v !== "object" || v instanceof ExactNumber);
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/** JSON.parse keeping every number whose text String() would change as ExactNumber (the browser
 * gives the source text; where it does not, a -0 is the server's -0.0 — an integer is never
 * negative zero — and the other numbers are as JSON.parse reads them). */
export function parseExact(text: string): unknown {
  const reviver: Reviver = (_key, value, context) => {
    if (typeof value !== "number") return value;
    const source = context?.source ?? (Object.is(value, -0) ? "-0.0" : undefined);
    return source !== undefined && source !== String(value) ? new ExactNumber(source) : value;
  };
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

/** JSON text of a value with ExactNumbers written as the server wrote them (two-space indent when asked). */
export function jsonText(value: unknown, indent = 0): string {
  const marks: string[] = [];
  // a tag no log text can guess, so only our own placeholders are replaced
  const tag = `exact${Math.random().toString(36).slice(2)}`;
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof ExactNumber) {
      marks.push(v.text);
      return `\u0000${tag}:${marks.length - 1}`;
    }
    return v;
  }, indent || undefined);
  if (!marks.length) return text;
  return text.replace(new RegExp(`"\\\\u0000${tag}:(\\d+)"`, "g"), (_m, i: string) => marks[Number(i)]);
}

export interface QueryAnswer {
  kind: "records" | "table" | "timechart";
  columns: string[];
  rows: Row[];
  stats: { rows_scanned: number | null; bytes_scanned: number | null; elapsed_ms: number };
}

export async function runQuery(
  q: string,
  from: string | null,
  to: string | null,
  limit: number | null,
  signal?: AbortSignal,
): Promise<QueryAnswer> {
  const body: Record<string, unknown> = { q };
  if (from) body.from = from;
  if (to) body.to = to;
  if (limit !== null) body.limit = limit;
  const response = await request("/api/v1/query", {
    method: "POST",
    signal,
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/json" },
  });
  return parseExact(await response.text()) as QueryAnswer;
}

/** Does an endpoint exist and answer this key? (used to show pages whose API may not be there) */
export async function probe(path: string): Promise<boolean> {
  try {
    await request(path, { headers: { Accept: "application/json" } });
    return true;
  } catch {
    return false;
  }
}

/** Saved queries (name and text), for the query box's suggestions. */
export async function savedQueries(): Promise<{ name: string; query: string }[]> {
  const answer = await getJSON<{ items?: { name: string; query: string }[] }>("/api/v1/saved-queries", undefined, true);
  return answer.items ?? [];
}
