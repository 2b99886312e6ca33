// A gap of a trace's timing breakdown is one layer's duration minus the duration of the layer it
// called, each measured on its own machine. Below zero it cannot be a real time: it says the two
// measurements disagree, and by how much. This explains a negative gap where it is shown; it
// does not estimate or correct any clock (the server's trace view owns that).

/** How finely each layer reports its durations, in ms: the ALB and NGINX log whole milliseconds
 * ($request_time, $upstream_response_time, the ALB's *_processing_time have three decimals of a
 * second); an app's own duration is taken as exact. */
export const RESOLUTION_MS: Record<string, number> = { alb: 1, nginx: 1, upstream: 1, app: 0 };

export interface GapNote {
  /** "rounding" when the two roundings alone can make it negative, else "disagree". */
  kind: "rounding" | "disagree";
  text: string;
}

const ms = (v: number) => `${+v.toFixed(v < 10 ? 2 : 1)} ms`;

/** The note for a gap between the outer layer `a` and the inner layer `b` (names for people,
 * keys of RESOLUTION_MS for rounding), or null when the gap is not negative. */
export function negativeGapNote(gapMs: number | null, a: { name: string; key: string },
  b: { name: string; key: string }): GapNote | null {
  if (gapMs === null || !Number.isFinite(gapMs) || gapMs >= 0) return null;
  const by = -gapMs;
  const rounding = (RESOLUTION_MS[a.key] ?? 0) + (RESOLUTION_MS[b.key] ?? 0);
  if (by <= rounding) {
    const rounders = [a, b].filter((l) => (RESOLUTION_MS[l.key] ?? 0) > 0).map((l) => l.name);
    return { kind: "rounding", text: `negative by ${ms(by)}: within rounding — ${rounders.join(" and ")} ` +
      `${rounders.length > 1 ? "log" : "logs"} whole milliseconds, so the difference can be up to ${ms(rounding)} ` +
      `off; read it as about 0.` };
  }
  return { kind: "disagree", text: `negative: the clocks of ${a.name} and ${b.name} disagree by ≥ ${ms(by)} — ` +
    `${b.name} measured longer than ${a.name}, which waits for it. Each duration is timed on its own machine: ` +
    `one clock ran fast or slow or was stepped (NTP) during the request, or the two time different spans. ` +
    `The real gap is unknown, not below zero.` };
}
