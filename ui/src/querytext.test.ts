import { describe, expect, it } from "vitest";

import { addFilter, filterPart, highlightPattern, isFilterable, pipeIndex, pipePositions, quoteValue, splitPipes } from "./querytext";

describe("pipeIndex", () => {
  it("finds the first pipe", () => {
    expect(pipeIndex("level:ERROR | stats count()")).toBe(12);
    expect(pipeIndex("level:ERROR")).toBe(-1);
  });
  it("skips a | inside a /regex/ (issue #23)", () => {
    expect(pipeIndex("message:/a|b/")).toBe(-1);
    expect(pipeIndex("message:/a|b/ | stats count()")).toBe(14);
    expect(pipeIndex("/timeout|refused/|top 5 service")).toBe(17);
    expect(pipeIndex("(message:/x|y/ OR z) | limit 1")).toBe(21);
    expect(pipeIndex("-/a|b/ | limit 1")).toBe(7);
  });
  it("keeps a path that only looks like a regex", () => {
    // the server's lexer: a regex is closed by a / followed by a space, ), | or the end
    expect(pipeIndex("path:/api/orders* | top 3 path")).toBe(18);
    expect(pipeIndex("path:/api/x|y")).toBe(11);
  });
  it("skips escaped slashes inside a regex and a | inside quotes", () => {
    expect(pipeIndex("message:/a\\/b|c/ | limit 2")).toBe(17);
    expect(pipeIndex('"a | b" | limit 2')).toBe(8);
    expect(pipeIndex('message:"say \\"|\\"" | limit 2')).toBe(20);
  });
  it("skips an escaped \\| outside quotes (the server reads it as the character)", () => {
    expect(pipeIndex("a\\|b | limit 1")).toBe(5);
    expect(pipeIndex("a\\|b")).toBe(-1);
    expect(splitPipes("x\\|y | z")).toEqual(["x\\|y", "z"]);
  });
  it("splits every pipe", () => {
    expect(pipePositions("a | where message:/x|y/ | stats count()")).toEqual([2, 24]);
    expect(splitPipes("a | where message:/x|y/ | stats count()")).toEqual(["a", "where message:/x|y/",
      "stats count()"]);
    expect(filterPart("  | stats count()")).toBe("*");
  });
});

describe("addFilter", () => {
  it("adds before the pipes, quoting what needs it", () => {
    expect(addFilter("*", "service", "checkout", false)).toBe("service:checkout");
    expect(addFilter("message:/a|b/ | stats count()", "level", "ERROR", true))
      .toBe("message:/a|b/ AND NOT level:ERROR | stats count()");
    expect(addFilter("a OR b", "path", "/api/x y", false)).toBe('(a OR b) AND path:"/api/x y"');
  });
  it("quotes keywords and keeps numbers bare", () => {
    expect(quoteValue("and")).toBe('"and"');
    expect(quoteValue(502)).toBe("502");
    expect(quoteValue('a"b\\')).toBe('"a\\"b\\\\"');
  });
});

describe("highlightPattern", () => {
  it("matches words in any case, as the search does", () => {
    const re = highlightPattern("Declined AND level:ERROR");
    expect(re).not.toBeNull();
    expect("payment declined by provider".match(re!)?.[0]).toBe("declined");
    expect("DECLINED".match(re!)?.[0]).toBe("DECLINED");
    expect("undeclined".match(re!)).toBeNull();
  });
  it("leaves out negated terms and other fields", () => {
    expect(highlightPattern("NOT timeout AND service:x")).toBeNull();
    expect(highlightPattern("message:/a|b/ | stats count()")).toBeNull();
  });
});

describe("isFilterable", () => {
  it("takes every name the server's query language reads: any script bare, the rest in backticks", () => {
    for (const name of ["service", "http.status", "x-request-id", "müşteri", "用户", "заказ.номер", "`a b`",
      "``", "nested.`c d`", "`a\\`b`", "order.items.0"]) {
      expect(isFilterable(name), name).toBe(true);
    }
    for (const name of ["a b", "a:b", "1abc", "a..b", "`open", "(x)", ""]) {
      expect(isFilterable(name), name).toBe(false);
    }
  });
});
