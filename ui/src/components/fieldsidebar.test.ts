import { describe, expect, it } from "vitest";

import { ExactNumber, parseExact } from "../api";
import { filterTerm } from "../querytext";
import { valueLabel } from "./fieldsidebar";

describe("field values beyond 2^53", () => {
  it("are shown and filtered by their digits", () => {
    // /api/v1/fields answers {"value": 18446744073709551617}: JSON.parse made it ...552000, shown
    // so, and a click filtered by a number no record holds
    const big = new ExactNumber("18446744073709551617");
    expect(valueLabel(big)).toBe("18446744073709551617");
    expect(filterTerm("order_id", big, false)).toBe("order_id:18446744073709551617");
    expect(valueLabel(12.5)).toBe("12.5");
  });
  it("read apart when their JSON types differ, and exactly", () => {
    // the server counts 7 and "7", true and "true", 1 and 1.0, -0.0 and 0.0 apart
    expect(valueLabel(7)).toBe("7");
    expect(valueLabel("7")).toBe('"7"');
    expect(valueLabel(true)).toBe("true");
    expect(valueLabel("true")).toBe('"true"');
    expect(valueLabel("null")).toBe('"null"');
    expect(valueLabel(null)).toBe("null");
    expect(valueLabel("")).toBe('""');
    expect(valueLabel("1.4.2")).toBe("1.4.2");
    expect(valueLabel("u-7")).toBe("u-7");
    expect(valueLabel(new ExactNumber("-0.0"))).toBe("-0.0");
    expect(valueLabel(new ExactNumber("1.0"))).toBe("1.0");
    // rounded to 6 decimals before: 1e-7 was 0
    expect(valueLabel(1e-7)).toBe("1e-7");
    expect(valueLabel(5e-324)).toBe("5e-324");
    expect(filterTerm("x", new ExactNumber("-0.0"), false)).toBe('x:"-0.0"');
    expect(filterTerm("x", new ExactNumber("1.0"), true)).toBe("NOT x:1.0");
    expect(filterTerm("x", new ExactNumber("1e+300"), false)).toBe('x:"1e+300"');
  });
  it("arrive as ExactNumber from an answer parsed exactly", () => {
    const answer = parseExact('{"top": [{"value": 18446744073709551617, "count": 3}]}') as
      { top: { value: unknown; count: number }[] };
    if (answer.top[0].value instanceof ExactNumber) expect(valueLabel(answer.top[0].value)).toBe("18446744073709551617");
    expect(answer.top[0].count).toBe(3);
  });
});
