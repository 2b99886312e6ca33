// Time ranges as the URL holds them: relative (`now-1h` … `now`) or absolute (RFC 3339).
// A search resolves a range to absolute instants once, when it runs, so the histogram, the rows
// and every further page of rows all describe the same window.

export interface TimeRange {
  from: string;
  to: string;
}

export interface Resolved {
  fromMs: number;
  toMs: number;
}

export const PRESETS: { label: string; from: string }[] = [
  { label: "Last 5 minutes", from: "now-5m" },
  { label: "Last 15 minutes", from: "now-15m" },
  { label: "Last 1 hour", from: "now-1h" },
  { label: "Last 6 hours", from: "now-6h" },
  { label: "Last 24 hours", from: "now-24h" },
  { label: "Last 7 days", from: "now-7d" },
  { label: "Last 30 days", from: "now-30d" },
];

export const DEFAULT_RANGE: TimeRange = { from: "now-1h", to: "now" };

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `now`, `now-15m`, `now-1h30m`, or an RFC 3339 / epoch-ms string → epoch milliseconds. */
export function parseInstant(text: string, nowMs: number): number | null {
  const t = text.trim();
  if (t === "now") return nowMs;
  const rel = /^now-((?:\d+[smhdw])+)$/.exec(t);
  if (rel) {
    let total = 0;
    for (const part of rel[1].matchAll(/(\d+)([smhdw])/g)) total += Number(part[1]) * UNIT_MS[part[2]];
    return nowMs - total;
  }
  if (/^\d{12,}$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

export function resolve(range: TimeRange, nowMs = Date.now()): Resolved | null {
  const fromMs = parseInstant(range.from, nowMs);
  const toMs = parseInstant(range.to, nowMs);
  if (fromMs === null || toMs === null || toMs <= fromMs) return null;
  return { fromMs, toMs };
}

export function isRelative(range: TimeRange): boolean {
  return range.from.startsWith("now") && range.to === "now";
}

export function describe(range: TimeRange): string {
  const preset = PRESETS.find((p) => p.from === range.from && range.to === "now");
  if (preset) return preset.label;
  if (isRelative(range)) return `Since ${range.from}`;
  const r = resolve(range);
  if (!r) return `${range.from} → ${range.to}`;
  return `${formatLocal(r.fromMs)} → ${formatLocal(r.toMs)}`;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Local wall-clock time, as a person reads it (`2026-11-25 01:34:08.943`). */
export function formatLocal(ms: number, withMs = false): string {
  const d = new Date(ms);
  const base =
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** The value of an <input type="datetime-local"> for an instant (local time, seconds). */
export function toInputValue(ms: number): string {
  return formatLocal(ms).replace(" ", "T");
}

const SPANS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 604800];

/** A round bucket width giving at most about `buckets` bars over the range. */
export function pickSpan(r: Resolved, buckets = 80): number {
  const want = (r.toMs - r.fromMs) / 1000 / buckets;
  return SPANS_S.find((s) => s >= want) ?? SPANS_S[SPANS_S.length - 1];
}

export function spanText(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/**
 * An RFC 3339 timestamp with nanoseconds → [epoch ms, nanoseconds within that ms]; record
 * timestamps carry up to 9 fraction digits, more than a JS number holds, and paging needs them all.
 */
export function splitTimestamp(ts: string): { ms: number; subMsNs: number; frac9: string; base: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(ts);
  if (!m) {
    const ms = Date.parse(ts);
    return { ms, subMsNs: 0, frac9: "000000000", base: ts };
  }
  const frac9 = (m[2] ?? "").padEnd(9, "0");
  const ms = Date.parse(m[1] + "Z") + Number(frac9.slice(0, 3));
  return { ms, subMsNs: Number(frac9.slice(3)), frac9, base: m[1] };
}

/** The instant one nanosecond after `ts`, as RFC 3339 (an exclusive `to` that still includes ts). */
export function nextNanosecond(ts: string): string {
  const { base, frac9 } = splitTimestamp(ts);
  let frac = BigInt(frac9) + 1n;
  let seconds = Date.parse(base + "Z") / 1000;
  if (frac >= 1_000_000_000n) {
    frac -= 1_000_000_000n;
    seconds += 1;
  }
  const whole = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${whole}.${frac.toString().padStart(9, "0")}Z`;
}

/** A duration as dashboards write it (`30s`, `1h30m`) → milliseconds, or null. */
export function durationMs(text: string): number | null {
  const t = text.trim();
  if (!/^(?:\d+[smhdw])+$/.test(t)) return null;
  let total = 0;
  for (const part of t.matchAll(/(\d+)([smhdw])/g)) total += Number(part[1]) * UNIT_MS[part[2]];
  return total;
}
