import { describe, expect, it } from "vitest";

import { activeRate, bucketRate, coveredSeconds, partialBuckets, partialNote, secondsText } from "./buckets";

const T = 1_800_000_000; // a whole minute, epoch seconds

describe("partial buckets", () => {
  it("marks the last bucket while it is still filling", () => {
    const x = [T, T + 60, T + 120];
    const parts = partialBuckets(x, 60, T * 1000, (T + 140) * 1000);
    expect(parts).toEqual([{ index: 2, fromS: T + 120, toS: T + 140, covered: 20 / 60 }]);
  });
  it("marks the first bucket when the range starts inside it", () => {
    const x = [T, T + 60, T + 120];
    const parts = partialBuckets(x, 60, (T + 30) * 1000, (T + 180) * 1000);
    expect(parts.map((p) => [p.index, p.covered])).toEqual([[0, 0.5]]);
  });
  it("leaves whole buckets alone, a few ms of rounding included", () => {
    expect(partialBuckets([T, T + 60], 60, T * 1000, (T + 120) * 1000 + 5)).toEqual([]);
    expect(partialBuckets([], 60, 0, 1)).toEqual([]);
  });
  it("a single bucket cut on both sides is one partial", () => {
    const parts = partialBuckets([T], 60, (T + 10) * 1000, (T + 40) * 1000);
    expect(parts).toEqual([{ index: 0, fromS: T + 10, toS: T + 40, covered: 0.5 }]);
  });
  it("says what it is in words", () => {
    const parts = partialBuckets([T, T + 300], 300, T * 1000, (T + 430) * 1000);
    expect(partialNote(parts, 300, 1)).toBe("▨ the last bucket covers 2 min 10 s of its 5 min: partial, not a drop");
  });
});

describe("rate arithmetic", () => {
  it("divides a bucket's count by the seconds it covers", () => {
    expect(coveredSeconds(T, 60, T * 1000, (T + 20) * 1000)).toBe(20);
    expect(bucketRate(360, T, 60, T * 1000, (T + 20) * 1000)).toBe(18);
    expect(bucketRate(360, T, 60, 0, (T + 600) * 1000)).toBe(6);
    expect(bucketRate(null, T, 60, 0, 1)).toBeNull();
    expect(bucketRate(5, T, 60, (T + 60) * 1000, (T + 120) * 1000)).toBeNull();
  });
  it("takes the active minutes of a range, as the server does", () => {
    // 18/s for three minutes of an hour is 18/s, not 0.9/s
    const r = activeRate(18 * 180, (T + 1205) * 1000, (T + 1379) * 1000, T * 1000, (T + 3600) * 1000);
    expect(r).toEqual({ rate: 18, fromMs: (T + 1200) * 1000, toMs: (T + 1380) * 1000 });
    expect(activeRate(1, T * 1000, T * 1000, T * 1000, (T + 3600) * 1000).rate).toBeCloseTo(1 / 60);
    expect(activeRate(5, T * 1000, T * 1000, T * 1000, T * 1000 + 100).rate).toBe(5);
  });
  it("writes lengths for people", () => {
    expect([secondsText(42), secondsText(300), secondsText(130), secondsText(5400)]).toEqual(["42 s", "5 min", "2 min 10 s", "1 h 30 min"]);
  });
});
