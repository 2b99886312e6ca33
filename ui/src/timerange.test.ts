import { describe, expect, it } from "vitest";

import { setTimeZone } from "./settings";
import { apiBounds, describe as label, durationText, formatTime, normalizeInstant, parseInstant, resolve, shift,
  zoomOut } from "./timerange";

const NOW = Date.UTC(2026, 10, 1, 12, 0, 0); // 2026-11-01T12:00:00Z

describe("typed times", () => {
  it("reads relative times and durations", () => {
    expect(parseInstant("now", NOW)).toBe(NOW);
    expect(parseInstant("now-3h", NOW)).toBe(NOW - 3 * 3600_000);
    expect(parseInstant("now-1h30m", NOW)).toBe(NOW - 5400_000);
    expect(parseInstant("now+5m", NOW)).toBe(NOW + 300_000);
    expect(parseInstant("15m", NOW)).toBe(NOW - 900_000);
    expect(normalizeInstant("15m", NOW)).toBe("now-15m");
    expect(parseInstant("yesterday", NOW)).toBeNull();
  });
  it("reads dates in the chosen time zone, and zoned times as written", () => {
    setTimeZone("utc");
    expect(parseInstant("2026-11-01 10:30", NOW)).toBe(Date.UTC(2026, 10, 1, 10, 30));
    expect(parseInstant("2026-11-01T10:30:05.250", NOW)).toBe(Date.UTC(2026, 10, 1, 10, 30, 5, 250));
    expect(parseInstant("2026-11-01", NOW)).toBe(Date.UTC(2026, 10, 1));
    expect(parseInstant("2026-11-01T10:30:00+01:00", NOW)).toBe(Date.UTC(2026, 10, 1, 9, 30));
    expect(parseInstant("1793534400", NOW)).toBe(1793534400_000);
    expect(normalizeInstant("2026-11-01 10:30", NOW)).toBe("2026-11-01T10:30:00.000Z");
    expect(formatTime(Date.UTC(2026, 10, 1, 9, 5, 7, 30), true)).toBe("2026-11-01 09:05:07.030");
    setTimeZone("local");
    expect(parseInstant("2026-11-01 10:30", NOW)).toBe(new Date(2026, 10, 1, 10, 30).getTime());
  });
});

describe("ranges", () => {
  it("zooms out around the middle, and a relative range reaches twice as far", () => {
    expect(zoomOut({ from: "now-3h", to: "now" }, NOW)).toEqual({ from: "now-6h", to: "now" });
    const abs = zoomOut({ from: "2026-11-01T08:00:00.000Z", to: "2026-11-01T10:00:00.000Z" }, NOW);
    expect(abs).toEqual({ from: "2026-11-01T07:00:00.000Z", to: "2026-11-01T11:00:00.000Z" });
  });
  it("shifts by half its length, never past now", () => {
    expect(shift({ from: "now-2h", to: "now" }, -1, NOW)).toEqual(
      { from: "2026-11-01T09:00:00.000Z", to: "2026-11-01T11:00:00.000Z" });
    expect(shift({ from: "now-2h", to: "now" }, 1, NOW)).toEqual(
      { from: "2026-11-01T10:00:00.000Z", to: "2026-11-01T12:00:00.000Z" });
  });
  it("keeps a range inside one millisecond (a link to one record) to the nanosecond", () => {
    const range = { from: "2026-11-01T10:00:00.123456789Z", to: "2026-11-01T10:00:00.123456790Z" };
    const r = resolve(range, NOW);
    expect(r).not.toBeNull();
    expect(apiBounds(range, r!)).toEqual(range);
    expect(resolve({ from: range.to, to: range.from }, NOW)).toBeNull();
  });
  it("names ranges", () => {
    expect(label({ from: "now-1h", to: "now" })).toBe("Last 1 hour");
    expect(label({ from: "now-3h", to: "now" })).toBe("Last 3h");
    expect(durationText(5400_000)).toBe("1h30m");
  });
});
