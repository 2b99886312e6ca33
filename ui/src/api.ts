// Every call to the server goes through here: it adds the key and turns a 401 into a trip back
// to the login form, so no page has to handle an expired or revoked key on its own.

import { clearKey, getKey } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly position: number | null = null,
  ) {
    super(message);
  }
}

export class Unauthorized extends ApiError {}

let onUnauthorized: () => void = () => undefined;

/** Set by the app shell: where a 401 sends the user. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export function authHeaders(key: string | null = getKey()): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function failure(response: Response): Promise<ApiError> {
  let code = "http_" + response.status;
  let message = response.statusText || `HTTP ${response.status}`;
  let position: number | null = null;
  try {
    const body = await response.json();
    const err = body?.error;
    if (err && typeof err === "object") {
      code = String(err.code ?? code);
      message = String(err.message ?? message);
      position = typeof err.position === "number" ? err.position : null;
    }
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 401) {
    clearKey();
    onUnauthorized();
    return new Unauthorized(401, code, message);
  }
  return new ApiError(response.status, code, message, position);
}

/** fetch() with the key; throws ApiError for any non-2xx answer. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  const response = await fetch(path, { ...init, headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await request(path, { signal, headers: { Accept: "application/json" } });
  return (await response.json()) as T;
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

export interface QueryAnswer {
  kind: "records" | "table" | "timechart";
  columns: string[];
  rows: Row[];
  stats: { rows_scanned: number | null; bytes_scanned: number | null; elapsed_ms: number };
}

export function runQuery(
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
  return postJSON<QueryAnswer>("/api/v1/query", body, signal);
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
