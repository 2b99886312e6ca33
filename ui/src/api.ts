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
 * getJSON for answers that carry record values (trace records, field values): an integer beyond
 * 2^53 stays its digits (ExactInt), as in runQuery; JSON.parse rounded 18446744073709551617 to
 * ...552000, shown so and filtered by (finding nothing).
 */
export async function getExactJSON<T>(path: string, signal?: AbortSignal, background = false): Promise<T> {
  const response = await request(path, { signal, headers: { Accept: "application/json" } }, background);
  return parseExact(await response.text()) as T;
}

export async function postJSON<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await request(path, {
    method: "POST",
    signal,
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/json" },
  });
  return (await response.json()) as T;
}

export type Row = Record<string, unknown>;

/**
 * An integer beyond what a JavaScript number holds exactly (2^53), kept as its digits: a record
 * may carry one (the server writes it exactly), and showing, copying or filtering by it must not
 * round it. Everything that prints values knows this type (valueText, jsonText).
 */
export class ExactInt {
  constructor(readonly digits: string) {}

  toString(): string {
    return this.digits;
  }
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/** JSON.parse keeping integers a number would round as ExactInt (the browser gives the source text). */
export function parseExact(text: string): unknown {
  const reviver: Reviver = (_key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^-?\d+$/.test(context.source)
      ? new ExactInt(context.source)
      : value;
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

/** JSON text of a value with ExactInts written as their digits (two-space indent when asked). */
export function jsonText(value: unknown, indent = 0): string {
  const marks: string[] = [];
  // a tag no log text can guess, so only our own placeholders are replaced
  const tag = `exact${Math.random().toString(36).slice(2)}`;
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof ExactInt) {
      marks.push(v.digits);
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
