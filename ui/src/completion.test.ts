import { describe, expect, it } from "vitest";

import { applyCompletion, completionAt, insertion, rank, replaceField } from "./completion";

const at = (q: string) => completionAt(q.replace("‸", ""), q.indexOf("‸"));

describe("completionAt", () => {
  it("suggests fields at the start of a term", () => {
    expect(at("serv‸")).toEqual({ kind: "field", prefix: "serv", start: 0, end: 4 });
    expect(at("level:ERROR AND -ho‸")).toMatchObject({ kind: "field", prefix: "ho", start: 17 });
    expect(at("(a OR ‸")).toMatchObject({ kind: "field", prefix: "" });
  });
  it("suggests values after field:", () => {
    expect(at("service:che‸")).toEqual({ kind: "value", field: "service", prefix: "che", start: 8, end: 11 });
    expect(at("status:>=5‸")).toMatchObject({ kind: "value", field: "status", prefix: "5", start: 9 });
    expect(at("level:(ERROR OR W‸")).toMatchObject({ kind: "value", field: "level", prefix: "W" });
    expect(at('path:"/api/o‸')).toMatchObject({ kind: "value", field: "path", prefix: "/api/o", start: 5 });
  });
  it("suggests pipes and functions after |", () => {
    expect(at("a | st‸")).toEqual({ kind: "pipe", prefix: "st", start: 4, end: 6 });
    expect(at("a |‸")).toMatchObject({ kind: "pipe", prefix: "" });
    expect(at("a | stats co‸")).toMatchObject({ kind: "function", prefix: "co", start: 10 });
    expect(at("a | stats p99(dur‸")).toMatchObject({ kind: "field", prefix: "dur" });
    expect(at("a | stats count() by ser‸")).toMatchObject({ kind: "field", prefix: "ser" });
    expect(at("a | stats count() by service, le‸")).toMatchObject({ kind: "field", prefix: "le" });
    expect(at("a | top 5 us‸")).toMatchObject({ kind: "field", prefix: "us" });
    expect(at("a | limit 1‸")).toEqual({ kind: "none" });
    expect(at("a | where serv‸")).toMatchObject({ kind: "field", prefix: "serv" });
    expect(at("a | where service:x‸")).toMatchObject({ kind: "value", field: "service", prefix: "x" });
  });
  it("is not fooled by a | inside a regex", () => {
    expect(at("message:/a|b/ AND lev‸")).toMatchObject({ kind: "field", prefix: "lev" });
  });
});

describe("applying a suggestion", () => {
  it("replaces the whole token and leaves the caret after it", () => {
    const c = completionAt("servi AND x", 3);
    expect(applyCompletion("servi AND x", c, insertion(c, "service"))).toEqual({ q: "service: AND x", caret: 8 });
    const v = completionAt("service:che", 11);
    expect(applyCompletion("service:che", v, insertion(v, "checkout"))).toEqual({ q: "service:checkout ", caret: 17 });
    const quoted = completionAt("path:/api/o", 11);
    expect(applyCompletion("path:/api/o", quoted, insertion(quoted, "/api/orders x")).q).toBe('path:"/api/orders x" ');
    const f = completionAt("* | stats co", 12);
    expect(applyCompletion("* | stats co", f, insertion(f, "count")).q).toBe("* | stats count(");
  });
  it("replaces a misspelt field where it was written", () => {
    expect(replaceField("servce:x AND servce:y", 13, "servce", "service")).toBe("servce:x AND service:y");
    expect(replaceField("servce:x", 3, "servce", "service")).toBe("servce:x");
  });
  it("ranks prefix matches first", () => {
    expect(rank(["http.status", "status_code", "service"], "stat")).toEqual(["status_code", "http.status"]);
  });
});
