import { describe, expect, it } from "vitest";

import { ExactInt, jsonText, parseExact } from "./api";

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
    expect(row.a).toBeInstanceOf(ExactInt);
    expect(String(row.a)).toBe("123456789012345678901234567890");
    expect(row.b).toBe(7);
    expect(jsonText(row)).toBe('{"a":123456789012345678901234567890,"b":7,"c":1.5,"d":"9007199254740993"}');
  });
  it("writes them back as digits", () => {
    expect(jsonText({ x: [new ExactInt("-18446744073709551617")], y: "\u0000exact" }, 2))
      .toBe('{\n  "x": [\n    -18446744073709551617\n  ],\n  "y": "\\u0000exact"\n}');
    expect(parseExact('{"b": 7, "c": [1.5, "x"]}')).toEqual({ b: 7, c: [1.5, "x"] });
  });
});
