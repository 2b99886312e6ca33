// Time ranges as the URL holds them: relative (`now-1h` … `now`) or absolute (RFC 3339).
// Typed times are read in the chosen time zone (settings.ts). A search resolves a range to absolute instants once, when it runs, so the histogram, the rows
// and every further page of rows all describe the same window.

import { timeZone } from "./settings";

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
const DURATION = /^(?:\d+[smhdw])+$/;
const RELATIVE = /^now(?:([+-])((?:\d+[smhdw])+))?$/;
const WALL = /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?$/;

function sumDuration(text: string): number {
  let total = 0;
  for (const part of text.matchAll(/(\d+)([smhdw])/g)) total += Number(part[1]) * UNIT_MS[part[2]];
  return total;
}

/** A wall-clock date and time read in the chosen time zone (local or UTC) → epoch ms. */
function wallClock(m: RegExpExecArray): number {
  const [y, mo, d, hh, mi, ss, frac] = [1, 2, 3, 4, 5, 6, 7].map((i) => m[i]);
  const ms = Number((frac ?? "").padEnd(3, "0").slice(0, 3));
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(hh ?? 0), Number(mi ?? 0), Number(ss ?? 0), ms] as const;
  return timeZone() === "utc" ? Date.UTC(...parts) : new Date(...parts).getTime();
}

/**
 * What a person types for a time → epoch milliseconds, or null: `now`, `now-15m`, `now-1h30m`,
 * `now+5m`, a bare duration meaning that long ago (`15m`, `3h`), a date and time in the chosen
 * time zone (`2026-11-01 12:00`, `2026-11-01T12:00:05.250`, `2026-11-01`), RFC 3339 with a zone
 * (`…Z`, `…+01:00`), or epoch seconds / milliseconds.
 */
export function parseInstant(text: string, nowMs: number): number | null {
  const t = text.trim();
  const rel = RELATIVE.exec(t);
  if (rel) return rel[1] === "+" ? nowMs + sumDuration(rel[2]) : nowMs - sumDuration(rel[2] ?? "");
  if (DURATION.test(t)) return nowMs - sumDuration(t);
  if (/^\d{12,}$/.test(t)) return Number(t);
  if (/^\d{9,11}$/.test(t)) return Number(t) * 1000;
  const wall = WALL.exec(t);
  if (wall) return wallClock(wall);
  if (!/[zZ]$|[+-]\d\d:?\d\d$/.test(t)) return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** A typed time as the URL keeps it: relative as `now-…` (it moves with now), the rest as RFC 3339. */
export function normalizeInstant(text: string, nowMs = Date.now()): string | null {
  const t = text.trim();
  const rel = RELATIVE.exec(t);
  if (rel) return t;
  if (DURATION.test(t)) return `now-${t}`;
  const ms = parseInstant(t, nowMs);
  return ms === null ? null : iso(ms);
}

const EXACT = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

/** An RFC 3339 UTC time to the nanosecond (as BigInt), or null for anything else. */
function exactNs(text: string): bigint | null {
  const m = EXACT.exec(text.trim());
  if (!m) return null;
  return BigInt(Date.parse(m[1] + "Z")) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

export function resolve(range: TimeRange, nowMs = Date.now()): Resolved | null {
  const fromMs = parseInstant(range.from, nowMs);
  const toMs = parseInstant(range.to, nowMs);
  if (fromMs === null || toMs === null) return null;
  if (toMs > fromMs) return { fromMs, toMs };
  // a range inside one millisecond (a link to one record): valid when its nanoseconds say so
  const fromNs = exactNs(range.from);
  const toNs = exactNs(range.to);
  return fromNs !== null && toNs !== null && toNs > fromNs ? { fromMs, toMs: fromMs + 1 } : null;
}

/** The bounds a query sends: an absolute UTC bound as written (to the nanosecond), the rest resolved. */
export function apiBounds(range: TimeRange, r: Resolved): { from: string; to: string } {
  const exact = (text: string, ms: number) => (exactNs(text) !== null ? text.trim() : iso(ms));
  return { from: exact(range.from, r.fromMs), to: exact(range.to, r.toMs) };
}

export function isRelative(range: TimeRange): boolean {
  return range.from.startsWith("now") && range.to === "now";
}

export function describe(range: TimeRange): string {
  const preset = PRESETS.find((p) => p.from === range.from && range.to === "now");
  if (preset) return preset.label;
  if (isRelative(range)) return `Last ${range.from.slice(4)}`;
  const r = resolve(range);
  if (!r) return `${range.from} → ${range.to}`;
  const zone = timeZone() === "utc" ? " UTC" : "";
  return `${formatTime(r.fromMs)} → ${formatTime(r.toMs)}${zone}`;
}

/** Twice as long, around the same middle (a relative range reaches twice as far back). */
export function zoomOut(range: TimeRange, nowMs = Date.now()): TimeRange {
  const r = resolve(range, nowMs);
  if (!r) return range;
  const width = r.toMs - r.fromMs;
  if (isRelative(range)) return { from: `now-${durationText(width * 2)}`, to: "now" };
  const mid = r.fromMs + width / 2;
  return { from: iso(Math.round(mid - width)), to: iso(Math.round(Math.min(mid + width, nowMs))) };
}

/** The same length, half of it earlier (-1) or later (+1); never past now. */
export function shift(range: TimeRange, direction: -1 | 1, nowMs = Date.now()): TimeRange {
  const r = resolve(range, nowMs);
  if (!r) return range;
  const width = r.toMs - r.fromMs;
  let from = r.fromMs + direction * width / 2;
  let to = r.toMs + direction * width / 2;
  if (to > nowMs) {
    from -= to - nowMs;
    to = nowMs;
  }
  return { from: iso(Math.round(from)), to: iso(Math.round(to)) };
}

/** Milliseconds as the shortest duration text of whole units (`90m` → `1h30m`). */
export function durationText(ms: number): string {
  let left = Math.max(1000, Math.round(ms / 1000) * 1000);
  let out = "";
  for (const unit of ["w", "d", "h", "m", "s"]) {
    const n = Math.floor(left / UNIT_MS[unit]);
    if (n > 0) {
      out += `${n}${unit}`;
      left -= n * UNIT_MS[unit];
    }
  }
  return out || "1s";
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** A time as a person reads it, in the chosen time zone (`2026-11-25 01:34:08.943`). */
export function formatTime(ms: number, withMs = false): string {
  const d = new Date(ms);
  const utc = timeZone() === "utc";
  const [y, mo, day, hh, mi, ss, mss] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(),
      d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  const base = `${y}-${pad(mo + 1)}-${pad(day)} ${pad(hh)}:${pad(mi)}:${pad(ss)}`;
  return withMs ? `${base}.${pad(mss, 3)}` : base;
}

/** A record's timestamp to the nanosecond, in the chosen time zone. */
export function formatTimestamp(ts: string): string {
  const { ms, frac9 } = splitTimestamp(ts);
  if (Number.isNaN(ms)) return ts;
  return `${formatTime(ms)}.${frac9}`;
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
  return DURATION.test(t) ? sumDuration(t) : null;
}
