import { describe, expect, it } from "vitest";

import { ExactNumber, jsonText, num, parseExact } from "./api";

// JSON.parse gives revivers the source text from V8 11.4 (Chromium 114, Node 21) on; the browser
// test of the record view checks it in chromium itself
const sourceText = (() => {
  let seen = false;
  JSON.parse("1", ((_k: string, v: unknown, ctx?: { source?: string }) => {
    seen = ctx?.source === "1";
    return v;
  }) as (k: string, v: unknown) => unknown);
  return seen;
})();

describe("exact integers", () => {
  it.runIf(sourceText)("keeps digits a number would round", () => {
    const row = parseExact('{"a": 123456789012345678901234567890, "b": 7, "c": 1.5, "d": "9007199254740993"}') as
      Record<string, unknown>;
    expect(row.a).toBeInstanceOf(ExactNumber);
    expect(String(row.a)).toBe("123456789012345678901234567890");
    expect(row.b).toBe(7);
    expect(jsonText(row)).toBe('{"a":123456789012345678901234567890,"b":7,"c":1.5,"d":"9007199254740993"}');
  });
  it("writes them back as digits", () => {
    expect(jsonText({ x: [new ExactNumber("-18446744073709551617")], y: "\u0000exact" }, 2))
      .toBe('{\n  "x": [\n    -18446744073709551617\n  ],\n  "y": "\\u0000exact"\n}');
    expect(parseExact('{"b": 7, "c": [1.5, "x"]}')).toEqual({ b: 7, c: [1.5, "x"] });
  });
});

describe("exact numbers", () => {
  // what the server writes (orjson) for values a JavaScript number would print otherwise:
  // String(-0) is "0", String(1) for 1.0, 10000000000000000 for 1e+16
  const answer = '{"neg": -0.0, "zero": 0.0, "one": 1.0, "int": 1, "huge": 1e+300, "tiny": 5e-324, ' +
    '"whole": 1e+16, "half": 0.5, "t": true, "s": "-0.0", "long": 0.30000000000000004}';
  it.runIf(sourceText)("keeps the text of every number String() would change", () => {
    const row = parseExact(answer) as Record<string, unknown>;
    for (const k of ["neg", "zero", "one", "whole"]) expect(row[k]).toBeInstanceOf(ExactNumber);
    expect(String(row.neg)).toBe("-0.0");
    expect(String(row.one)).toBe("1.0");
    expect(row.int).toBe(1);
    expect(row.huge).toBe(1e300); // String(1e300) is "1e+300": nothing to keep
    expect(row.tiny).toBe(5e-324);
    expect(row.long).toBe(0.30000000000000004);
    expect(row.t).toBe(true);
    expect(row.s).toBe("-0.0");
    expect(jsonText(row)).toBe(answer.replace(/": /g, '":').replace(/, /g, ","));
  });
  it.runIf(!sourceText)("keeps the sign of -0.0 where the browser gives no source text", () => {
    const row = parseExact('{"neg": -0.0, "zero": 0.0, "n": [-0.0]}') as { neg: unknown; zero: unknown; n: unknown[] };
    expect(String(row.neg)).toBe("-0.0");
    expect(row.zero).toBe(0);
    expect(jsonText(row)).toBe('{"neg":-0.0,"zero":0,"n":[-0.0]}');
  });
  it("computes with the value", () => {
    const neg = new ExactNumber("-0.0");
    expect(Object.is(+neg, -0)).toBe(true);
    expect(num(new ExactNumber("12.0"))).toBe(12);
    expect(new ExactNumber("12.0").toFixed(1)).toBe("12.0");
    expect(num("12")).toBe(null);
    expect(num(NaN)).toBe(null);
    expect(num(7)).toBe(7);
  });
});
