import { describe, expect, it } from "vitest";

import { conditionParts, fieldOf, keptOptions, worstValue } from "./rulespec";

describe("the rule form's reading of a rule", () => {
  it("reads conditions as text and as the stored object", () => {
    expect(conditionParts("count > 2")).toEqual({ kind: "count", numerator: "", column: "", op: ">", threshold: "2" });
    expect(conditionParts("ratio(status:>=500) >= 0.05")?.numerator).toBe("status:>=500");
    expect(conditionParts("p95 < 300")?.column).toBe("p95");
    expect(conditionParts("absent")?.kind).toBe("absent");
    expect(conditionParts({ type: "count", op: ">", threshold: 2, numerator: null })?.threshold).toBe("2");
    expect(conditionParts({ type: "absence" })?.kind).toBe("absent");
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
