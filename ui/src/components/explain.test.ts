import { describe, expect, it } from "vitest";

import { type ExplainAnswer, explainSummary, liftText } from "./explain";

const answer = (significant: boolean): ExplainAnswer => ({
  focus: { from: "a", to: "b", count: 1200 },
  baseline: { mode: "previous", from: "c", to: "a", count: 300 },
  statistic: { alpha: 0.01, tests: 40, threshold_p: 0.00025, correction: "Bonferroni" },
  values: [{ field: "host", value: "web-7", filter: "host:web-7", focus: { count: 700, share: 0.58 },
    baseline: { count: 30, share: 0.1 }, lift: 5.8, new: false, g: 90, p: 1e-20, significant, exact: true }],
  fell: [], together: null, numbers: [], patterns: [], left_out: [],
});

describe("explain panel text", () => {
  it("says how many values stand out and the threshold", () => {
    expect(explainSummary(answer(true))).toContain("1 value stand out");
    expect(explainSummary(answer(true))).toContain("p < 0.00025");
    expect(explainSummary(answer(false))).toContain("no value stands out");
    const empty = answer(false);
    empty.baseline.count = 0;
    expect(explainSummary(empty)).toContain("none in the window before");
  });
  it("says when the columns were counted on time slices, and the sample's size", () => {
    expect(explainSummary({ ...answer(true), counted: { focus: 1200, baseline: 300, exact: true } })).not.toContain("slices");
    const big = { ...answer(true), counted: { focus: 261863, baseline: 261866, exact: false },
      sampled: { focus: 2000, baseline: 2000 } };
    big.focus = { ...big.focus, count: 10_000_000 };
    expect(explainSummary(big)).toContain("Counted on time slices: 261,863 of the 10,000,000 records");
    expect(explainSummary(big)).toContain("a sample of 2,000 and 2,000");
  });
  it("writes lift as a factor, or new", () => {
    expect(liftText({ lift: 5.8, new: false })).toBe("5.80×");
    expect(liftText({ lift: null, new: true })).toBe("new");
  });
});
