import { describe, expect, it } from "vitest";

import { clockSkewProblems, conditionParts, fieldOf, keptOptions, worstValue } from "./rulespec";

describe("the rule form's reading of a rule", () => {
  it("reads conditions as text and as the stored object", () => {
    expect(conditionParts("count > 2")).toEqual({ kind: "count", numerator: "", column: "", op: ">", threshold: "2" });
    expect(conditionParts("ratio(status:>=500) >= 0.05")?.numerator).toBe("status:>=500");
    expect(conditionParts("p95 < 300")?.column).toBe("p95");
    expect(conditionParts("absent")?.kind).toBe("absent");
    expect(conditionParts({ type: "count", op: ">", threshold: 2, numerator: null })?.threshold).toBe("2");
    expect(conditionParts({ type: "absence" })?.kind).toBe("absent");
    // a clock_skew rule is its own kind, not a stats column named clock_skew
    expect(conditionParts("clock_skew > 100")).toEqual({ kind: "clock_skew", numerator: "", column: "", op: ">", threshold: "100" });
    expect(conditionParts({ type: "clock_skew", op: ">=", threshold: 50 })?.kind).toBe("clock_skew");
    // what the form cannot edit is kept as stored
    expect(conditionParts({ type: "anomaly", metric: "count", k: 3 })).toBeNull();
    expect(conditionParts("new_pattern")).toBeNull();
  });
  it("finds the field a server message names", () => {
    expect(fieldOf("interval must be at least 10s")).toBe("interval");
    expect(fieldOf("condition: a ratio threshold is between 0 and 1")).toBe("condition");
    expect(fieldOf("labels.severity: too long")).toBe("labels");
    expect(fieldOf("for_: bad duration")).toBe("for");
    expect(fieldOf("a rule is a JSON object")).toBeNull();
  });
  it("lists only the stored options that say something", () => {
    expect(keptOptions({ name: "x", description: "", delay: "0s", max_notifications_per_hour: 20, annotations: {},
      repeat_interval: null })).toEqual([]);
    expect(keptOptions({ delay: "2m", annotations: { summary: "{{value}}" }, max_notifications_per_hour: 5 }))
      .toEqual(["delay", "annotations", "max_notifications_per_hour"]);
  });
});

describe("the preview's value per window", () => {
  it("takes the group nearest to firing", () => {
    expect(worstValue([3, 9, null, 1], ">")).toBe(9);
    expect(worstValue([3, 9, null, 1], "<=")).toBe(1);
    expect(worstValue([], ">")).toBe(0);
    expect(worstValue([null], "<")).toBeNull();
  });
});

describe("a clock_skew rule, checked as the API checks it", () => {
  const ok = { query: "*", op: ">", threshold: "100", group_by: [] as string[] };
  it("takes > or >= a threshold of 0 ms or more, on the query * with no group_by", () => {
    expect(clockSkewProblems(ok)).toEqual([]);
    expect(clockSkewProblems({ ...ok, op: ">=", threshold: "0", query: " " })).toEqual([]);
  });
  it("names the field of each refusal", () => {
    expect(clockSkewProblems({ ...ok, op: "<" }).map(fieldOf)).toEqual(["condition"]);
    expect(clockSkewProblems({ ...ok, threshold: "-5" }).map(fieldOf)).toEqual(["condition"]);
    expect(clockSkewProblems({ ...ok, threshold: "abc" }).map(fieldOf)).toEqual(["condition"]);
    expect(clockSkewProblems({ ...ok, query: "service:web" }).map(fieldOf)).toEqual(["query"]);
    expect(clockSkewProblems({ ...ok, group_by: ["host"] }).map(fieldOf)).toEqual(["group_by"]);
  });
});
