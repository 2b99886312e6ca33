// Honest numbers on charts: which buckets of a chart cover only part of their span (the last one
// while it is still filling, the first when the range starts inside it), and rates that divide
// by the time a bucket really covers, so the end of a chart is not drawn as a drop.

/** A bucket that covers only part of its span: its index, the part covered (epoch seconds) and
 * the share of the span that is. */
export interface PartialBucket {
  index: number;
  fromS: number;
  toS: number;
  covered: number;
}

/** Seconds of the bucket `[startS, startS + spanS)` that lie inside the range `[fromMs, toMs)`. */
export function coveredSeconds(startS: number, spanS: number, fromMs: number, toMs: number): number {
  const lo = Math.max(startS, fromMs / 1000);
  const hi = Math.min(startS + spanS, toMs / 1000);
  return Math.max(0, hi - lo);
}

/** The buckets (starts `x`, epoch seconds, each `spanS` long) that the range cuts: at most the
 * first and the last. A bucket that covers 99.9 % or more counts as whole (a range resolved a few
 * milliseconds after a bucket's end is not "partial"). */
export function partialBuckets(x: number[], spanS: number, fromMs: number, toMs: number): PartialBucket[] {
  if (!x.length || !(spanS > 0)) return [];
  const out: PartialBucket[] = [];
  const ends = x.length === 1 ? [0] : [0, x.length - 1];
  for (const index of ends) {
    const start = x[index];
    const covered = coveredSeconds(start, spanS, fromMs, toMs) / spanS;
    if (covered >= 0.999 || covered <= 0) continue;
    out.push({ index, fromS: Math.max(start, fromMs / 1000), toS: Math.min(start + spanS, toMs / 1000), covered });
  }
  return out;
}

/** Events per second in a bucket: the count over the seconds the bucket covers inside the range
 * (a last bucket 20 s into its minute holding 360 records is 18/s, not 6/s). Null for no count. */
export function bucketRate(count: number | null, startS: number, spanS: number, fromMs: number, toMs: number):
  number | null {
  if (count === null) return null;
  const seconds = coveredSeconds(startS, spanS, fromMs, toMs);
  return seconds > 0 ? count / seconds : null;
}

/** Requests per second over the active part of a range: from the start of the minute of the
 * first request to the end of the minute of the last one, cut to the range (the server's
 * `rate_per_s`; used when an older server gives only the range). At least one second. */
export function activeRate(requests: number, firstMs: number, lastMs: number, fromMs: number, toMs: number):
  { rate: number; fromMs: number; toMs: number } {
  const minute = 60_000;
  const lo = Math.max(fromMs, Math.floor(firstMs / minute) * minute);
  const hi = Math.min(toMs, Math.floor(lastMs / minute) * minute + minute);
  return { rate: requests / Math.max((hi - lo) / 1000, 1), fromMs: lo, toMs: hi };
}

/** "2 min 10 s" for a length in seconds (the notes under charts). */
export function secondsText(s: number): string {
  const r = Math.round(s);
  if (r < 60) return `${r} s`;
  if (r < 3600) return r % 60 ? `${Math.floor(r / 60)} min ${r % 60} s` : `${r / 60} min`;
  const m = Math.round(r / 60);
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}

/** The sentence under a chart with a partial bucket. */
export function partialNote(parts: PartialBucket[], spanS: number, lastIndex: number): string {
  return parts.map((p) => {
    const which = p.index === lastIndex && lastIndex > 0 ? "last" : p.index === 0 && lastIndex > 0 ? "first" : "only";
    return `▨ the ${which} bucket covers ${secondsText(p.toS - p.fromS)} of its ${secondsText(spanS)}` +
      (which === "first" ? " (the range starts inside it)" : ": partial, not a drop");
  }).join("; ");
}
