import { describe, expect, it } from "vitest";

import {
  alertMatchers, bytesText, matcherHolds, retentionFields, retentionRule, silencedBy, silenceUrl, channelConfig, countText, fieldErrors, matchersText, parseHeaders, relativeText, scopeText,
} from "./admin";
import { isAdmin, isScoped } from "./whoami";

describe("who sees the settings", () => {
  it("admins and servers without auth, never readers", () => {
    expect(isAdmin({ role: "admin" })).toBe(true);
    expect(isAdmin({ auth: "disabled" })).toBe(true);
    expect(isAdmin({ role: "reader" })).toBe(false);
    expect(isAdmin({ role: "writer" })).toBe(false);
    expect(isAdmin(null)).toBe(false);
  });
  it("a scope is a tenant or services", () => {
    expect(isScoped({ role: "admin", tenant: "acme" })).toBe(true);
    expect(isScoped({ role: "admin", services: ["checkout"] })).toBe(true);
    expect(isScoped({ role: "admin", tenant: null, services: null })).toBe(false);
    expect(isScoped({ auth: "disabled" })).toBe(false);
    expect(scopeText({ tenant: "acme", services: ["a", "b"] })).toBe("tenant acme, services a, b");
    expect(scopeText(null)).toBe("everything");
  });
});

describe("fieldErrors", () => {
  it("splits a request validation message by field, without body.", () => {
    const m = fieldErrors("invalid request: body.role: Input should be 'admin'; body.ingest_rate: Input should be greater than or equal to 1");
    expect(m.get("role")).toBe("Input should be 'admin'");
    expect(m.get("ingest_rate")).toBe("Input should be greater than or equal to 1");
  });
  it("keeps what names no field under the empty name", () => {
    const m = fieldErrors("'soon' is not a duration such as 30s, 15m, 1h, 7d or 1h30m");
    expect([...m.keys()]).toEqual([""]);
  });
  it("takes a further prefix and the Value error wording off", () => {
    const m = fieldErrors("invalid request: body.matchers.0: Value error, matcher a: bad regex: missing ): (", ["matchers."]);
    expect(m.get("0")).toBe("matcher a: bad regex: missing ): (");
    const c = fieldErrors("host: Field required; from: Field required; to: Field required");
    expect([...c.keys()]).toEqual(["host", "from", "to"]);
  });
});

describe("channelConfig", () => {
  it("leaves empty fields out so the server's defaults apply, and kept secrets stay unsent", () => {
    expect(channelConfig("webhook", { url: " https://x.example/h ", format: "slack", secret: "", headers: "", timeout_s: "" }))
      .toEqual({ url: "https://x.example/h", format: "slack" });
  });
  it("reads lists, headers, numbers and boxes", () => {
    expect(channelConfig("email", {
      host: "smtp.example.com", port: "465", starttls: false, tls: true, from: "a@example.com",
      to: "b@example.com, c@example.com,", username: "", password: "",
    })).toEqual({ host: "smtp.example.com", port: 465, starttls: false, tls: true, from: "a@example.com",
      to: ["b@example.com", "c@example.com"] });
    expect(channelConfig("alertmanager", { url: "http://am:9093", headers: "Authorization: Bearer x:y\n\nX-A: 1" }))
      .toEqual({ url: "http://am:9093", headers: { Authorization: "Bearer x:y", "X-A": "1" } });
  });
  it("keeps a number that is not one as text, for the server to name", () => {
    expect(channelConfig("teams", { url: "https://t.example", timeout_s: "soon" })).toEqual({ url: "https://t.example", timeout_s: "soon" });
  });
  it("a header line without a name is an error naming the line", () => {
    expect(() => parseHeaders("A: 1\nnot a header")).toThrow("line 2");
  });
});

describe("silences from alerts", () => {
  it("silence one group: its rule and each group label", () => {
    const m = alertMatchers("checkout errors", { service: "checkout", status: 502 });
    expect(m).toEqual([
      { name: "alertname", op: "=", value: "checkout errors" },
      { name: "service", op: "=", value: "checkout" },
      { name: "status", op: "=", value: "502" },
    ]);
    expect(matchersText(m)).toBe('alertname="checkout errors", service="checkout", status="502"');
    expect(alertMatchers("r", null)).toHaveLength(1);
    const url = new URL(silenceUrl("checkout errors", { service: "a=b" }), "http://x");
    expect(url.pathname).toBe("/ui/settings/silences");
    expect(url.searchParams.getAll("matcher")).toEqual(["alertname=checkout errors", "service=a=b"]);
  });
  it("which silence holds an alert back, as the server matches", () => {
    const labels = { alertname: "checkout errors", severity: "page", instance: "i-1", status: 502 };
    expect(matcherHolds({ name: "status", op: "=", value: "502" }, labels)).toBe(true);
    expect(matcherHolds({ name: "missing", op: "=", value: "" }, labels)).toBe(true);
    expect(matcherHolds({ name: "instance", op: "=~", value: "i-[0-9]" }, labels)).toBe(true);
    expect(matcherHolds({ name: "instance", op: "=~", value: "i-" }, labels)).toBe(false); // the whole value
    expect(matcherHolds({ name: "instance", op: "!~", value: "i-1|i-2" }, labels)).toBe(false);
    expect(matcherHolds({ name: "severity", op: "!=", value: "page" }, labels)).toBe(false);
    expect(matcherHolds({ name: "x", op: "=~", value: "(" }, labels)).toBe(false);
    const silences = [
      { id: 1, matchers: [{ name: "alertname", op: "=" as const, value: "other" }] },
      { id: 2, matchers: alertMatchers("checkout errors", { instance: "i-1" }) },
    ];
    expect(silencedBy(labels, silences)).toBe(2);
    expect(silencedBy({ ...labels, instance: "i-0" }, silences)).toBe(null);
  });
});

describe("numbers for reading", () => {
  it("bytes, counts and times to come or gone", () => {
    expect(bytesText(0)).toBe("0 B");
    expect(bytesText(1536)).toBe("1.5 KB");
    expect(bytesText(84.53)).toBe("84.5 B");
    expect(bytesText(5 * 1024 ** 3)).toBe("5.0 GB");
    expect(bytesText(null)).toBe("—");
    expect(countText(1234567)).toBe("1,234,567");
    const now = 1_700_000_000_000;
    expect(relativeText((now + 2 * 3600_000 + 5 * 60_000) * 1e6, now)).toBe("in 2h 5m");
    expect(relativeText((now - 3 * 86400_000) * 1e6, now)).toBe("3d ago");
    expect(relativeText((now + 4_000) * 1e6, now)).toBe("in 4s");
  });
});

describe("retention rules from their form", () => {
  it("lists, single values, ages, priority and a sample in percent", () => {
    const rule = retentionRule({ name: " checkout ", service: "checkout, cart", level: "debug", tenant: "", source: "",
      hot: "3d", warm: "", cold: "90d", delete: "", priority: "2", keep: "10 %", after: "7d" });
    expect(rule).toEqual({ name: "checkout", match: { service: ["checkout", "cart"], level: "debug" }, hot: "3d",
      cold: "90d", priority: 2, sample: { after: "7d", keep: 0.1 } });
    expect(retentionFields(rule)).toEqual({ name: "checkout", tenant: "", service: "checkout, cart", source: "",
      level: "debug", hot: "3d", warm: "", cold: "90d", delete: "", priority: "2", keep: "10", after: "7d" });
  });
  it("leaves what is not a number as typed, for the server to name", () => {
    expect(retentionRule({ name: "x", priority: "high" }).priority).toBe("high");
    expect(retentionRule({ name: "x", keep: "most" }).sample).toEqual({ after: "", keep: "most" });
    expect(retentionRule({ name: "x" })).toEqual({ name: "x" });
  });
});
