import { describe, expect, it } from "vitest";

import { ExactInt, parseExact } from "../api";
import { filterTerm } from "../querytext";
import { valueLabel } from "./fieldsidebar";

describe("field values beyond 2^53", () => {
  it("are shown and filtered by their digits", () => {
    // /api/v1/fields answers {"value": 18446744073709551617}: JSON.parse made it ...552000, shown
    // so, and a click filtered by a number no record holds
    const big = new ExactInt("18446744073709551617");
    expect(valueLabel(big)).toBe("18446744073709551617");
    expect(filterTerm("order_id", big, false)).toBe("order_id:18446744073709551617");
    expect(valueLabel(12.5)).toBe("12.5");
  });
  it("arrive as ExactInt from an answer parsed exactly", () => {
    const answer = parseExact('{"top": [{"value": 18446744073709551617, "count": 3}]}') as
      { top: { value: unknown; count: number }[] };
    if (answer.top[0].value instanceof ExactInt) expect(valueLabel(answer.top[0].value)).toBe("18446744073709551617");
    expect(answer.top[0].count).toBe(3);
  });
});
