import { describe, expect, it } from "vitest";

import { ExactNumber } from "./api";
import { attributeName, keySegment, nameKeys, recordFields, valueAt } from "./fieldnames";
import { addFilter, filterTerm } from "./querytext";

describe("keySegment / attributeName: the server's names (fields.py key_segment, fieldstats)", () => {
  it("leaves bare names bare and quotes the rest in backticks", () => {
    expect(keySegment("user_id", true)).toBe("user_id");
    expect(keySegment("müşteri", true)).toBe("müşteri");
    expect(keySegment("user name", true)).toBe("`user name`");
    expect(keySegment("a.b", true)).toBe("`a.b`");
    expect(keySegment("we`ird", true)).toBe("`we\\`ird`");
    expect(keySegment("back\\slash", true)).toBe("`back\\\\slash`");
    expect(keySegment("0", true)).toBe("`0`");
    expect(keySegment("0", false)).toBe("0");
    expect(keySegment("", true)).toBe("``");
  });
  it("writes an attribute named like a column attributes.<name>", () => {
    expect(attributeName(["status"])).toBe("attributes.status");
    expect(attributeName(["service"])).toBe("attributes.service");
    expect(attributeName(["attributes"])).toBe("attributes.attributes");
    expect(attributeName(["@timestamp"])).toBe("attributes.@timestamp");
    expect(attributeName(["status", "code"])).toBe("status.code");
    expect(attributeName(["http.path"])).toBe("`http.path`");
    expect(attributeName(["x", "y.z"])).toBe("x.`y.z`");
    expect(attributeName(["order", "line items", "sku"])).toBe("order.`line items`.sku");
  });
  it("reads names back into keys", () => {
    expect(nameKeys("order.`line items`.sku")).toEqual(["order", "line items", "sku"]);
    expect(nameKeys("`we\\`ird`")).toEqual(["we`ird"]);
    expect(nameKeys("`a")).toBeNull();
  });
});

describe("recordFields: a wire record's fields by the names that reach them", () => {
  const record = {
    timestamp: "2026-12-07T14:54:49.589968668Z", level: "INFO", service: "svc", message: "m1",
    http: { status: 200 }, "http.x": 1, status: "ok", "a.b": "lit", a: { b: "nested" }, "user name": "alice",
    big: new ExactNumber("18446744073709551617"), empty: {}, pattern_id: "c054072f3e8f2c4b",
  };
  const fields = Object.fromEntries(recordFields(record).map((f) => [f.name, f.value]));
  it("tells canonical fields, http columns and attributes apart", () => {
    expect(Object.keys(fields)).toEqual(["timestamp", "level", "service", "message", "http.status", "`http.x`",
      "attributes.status", "`a.b`", "a.b", "`user name`", "big", "empty", "pattern_id"]);
    expect(fields["`a.b`"]).toBe("lit");
    expect(fields["a.b"]).toBe("nested");
  });
  it("valueAt reads every such name back", () => {
    for (const f of recordFields(record)) expect(valueAt(record, f.name), f.name).toBe(f.value);
    expect(valueAt(record, "status")).toBe(200);  // the shorthand names the column
    expect(valueAt({ "a.b": 3 }, "a.b")).toBe(3);  // a bare dotted name: nested first, then the literal key
    expect(valueAt({ x: { "y.z": 4 } }, "x.y.z")).toBe(4);
  });
});

describe("filterTerm / addFilter", () => {
  it("quotes values that are not one plain word, exactly", () => {
    expect(filterTerm("`user name`", "al ice", false)).toBe('`user name`:"al ice"');
    expect(filterTerm("q", 'he said "hi" \\ *x?', true)).toBe('NOT q:"he said \\"hi\\" \\\\ *x?"');
    expect(filterTerm("n", -5, false)).toBe("n:-5");
    expect(filterTerm("big", new ExactNumber("18446744073709551617"), false)).toBe("big:18446744073709551617");
    expect(filterTerm("user_id", null, false)).toBe("NOT _exists_:user_id");
    expect(filterTerm("user_id", null, true)).toBe("_exists_:user_id");
  });
  it("adds a term once, and never mistakes a part of another term for it", () => {
    expect(addFilter("service:api", "service", "api", false)).toBe("service:api");
    expect(addFilter("x AND service:api", "service", "api", false)).toBe("x AND service:api");
    expect(addFilter("service:api-gw", "service", "api", false)).toBe("service:api-gw AND service:api");
    expect(addFilter("NOT service:api", "service", "api", false)).toBe("NOT service:api AND service:api");
    expect(addFilter("a AND service:api", "service", "api", true)).toBe("a AND service:api AND NOT service:api");
  });
});
