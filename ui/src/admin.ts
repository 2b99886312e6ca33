// What the settings pages (channels, silences, API keys, retention, saved queries) compute without
// the DOM: which field a server message is about, a channel's form values as the
// config the API takes, a firing alert as silence matchers, sizes and durations for reading.
// Pure functions, unit-tested in node (admin.test.ts).

/** A key's scope in words: `tenant acme, services checkout, cart`, or `everything`. */
export function scopeText(scope: { tenant?: string | null; services?: string[] | null } | null | undefined): string {
  const parts: string[] = [];
  if (scope?.tenant) parts.push(`tenant ${scope.tenant}`);
  if (scope?.services?.length) parts.push(`services ${scope.services.join(", ")}`);
  return parts.length ? parts.join(", ") : "everything";
}

/**
 * The server's 400 message split by the field it names, with the wrapper of the path taken off:
 * `invalid request: body.role: Input should be …; body.tenant: …` → `{role: …, tenant: …}`. What
 * names no field is under `""`. `strip` removes a further prefix (`config.` for a channel's settings).
 */
export function fieldErrors(message: string, strip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const text = message.replace(/^invalid (?:request|retention rules): /, "");
  for (const part of text.split(/; (?=[\w.]+: )/)) {
    const m = /^([\w.]+): ([\s\S]*)$/.exec(part);
    let loc = m ? m[1] : "";
    const msg = (m ? m[2] : part).replace(/^Value error, /, "");
    loc = loc.replace(/^body\.?/, "");
    for (const prefix of strip) if (loc.startsWith(prefix)) loc = loc.slice(prefix.length);
    out.set(loc, out.has(loc) ? `${out.get(loc)}; ${msg}` : msg);
  }
  return out;
}

/** One setting of a channel kind's form. */
export interface ChannelField {
  /** the key in the channel's config */
  key: string;
  label: string;
  type: "text" | "number" | "select" | "check" | "list" | "headers";
  required?: boolean;
  /** written only: never shown back by the server (`secure_fields`) */
  secret?: boolean;
  options?: string[];
  placeholder?: string;
  hint?: string;
  /** what the server uses when it is not given */
  default?: string | boolean;
}

const TIMEOUT: ChannelField = { key: "timeout_s", label: "Timeout (seconds)", type: "number", placeholder: "10" };

/** Each kind's settings, as the server's config models take them (server/features/alerts/channels/*.py). */
export const CHANNEL_KINDS: Record<string, { label: string; fields: ChannelField[] }> = {
  webhook: {
    label: "Webhook (JSON or Slack)",
    fields: [
      { key: "url", label: "URL", type: "text", required: true, secret: true, placeholder: "https://hooks.example.com/…" },
      { key: "format", label: "Body", type: "select", options: ["json", "slack"], default: "json",
        hint: "slack: {\"text\": …} for Slack-style incoming webhooks" },
      { key: "secret", label: "Signing secret", type: "text", secret: true,
        hint: "at least 8 characters; requests carry X-Logharbor-Signature-256" },
      { key: "headers", label: "Headers", type: "headers", secret: true, placeholder: "Authorization: Bearer …",
        hint: "one `Name: value` per line" },
      TIMEOUT,
    ],
  },
  email: {
    label: "E-mail (SMTP)",
    fields: [
      { key: "host", label: "SMTP host", type: "text", required: true, placeholder: "smtp.example.com" },
      { key: "port", label: "Port", type: "number", placeholder: "587" },
      { key: "starttls", label: "STARTTLS (port 587)", type: "check", default: true },
      { key: "tls", label: "TLS from the first byte (port 465)", type: "check", default: false },
      { key: "username", label: "User name", type: "text" },
      { key: "password", label: "Password", type: "text", secret: true },
      { key: "from", label: "From", type: "text", required: true, placeholder: "logharbor@example.com" },
      { key: "to", label: "To", type: "list", required: true, placeholder: "oncall@example.com, ops@example.com",
        hint: "addresses separated by commas" },
      { key: "ca_file", label: "CA bundle (file on the server)", type: "text" },
      { ...TIMEOUT, placeholder: "20" },
    ],
  },
  pagerduty: {
    label: "PagerDuty (Events API v2)",
    fields: [
      { key: "routing_key", label: "Integration key", type: "text", required: true, secret: true },
      { key: "severity", label: "Severity", type: "select", options: ["critical", "error", "warning", "info"],
        default: "error", hint: "unless the alert's severity label is one of these" },
      { key: "source", label: "Source", type: "text", placeholder: "logharbor" },
      { key: "url", label: "Events API URL", type: "text", placeholder: "https://events.pagerduty.com/v2/enqueue" },
      TIMEOUT,
    ],
  },
  alertmanager: {
    label: "Prometheus Alertmanager",
    fields: [
      { key: "url", label: "Alertmanager URL", type: "text", required: true, secret: true,
        placeholder: "http://alertmanager:9093" },
      { key: "headers", label: "Headers", type: "headers", secret: true, hint: "one `Name: value` per line" },
      { key: "generator_url", label: "Link back (generatorURL)", type: "text" },
      TIMEOUT,
    ],
  },
  teams: {
    label: "Microsoft Teams",
    fields: [
      { key: "url", label: "Workflow webhook URL", type: "text", required: true, secret: true },
      TIMEOUT,
    ],
  },
};

/** `Name: value` lines as a headers object; a line without a colon is an error naming it. */
export function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(":");
    if (at <= 0) throw new Error(`line ${i + 1}: write a header as Name: value`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/**
 * A channel's config from its form's values (text of every field, `true`/`false` for boxes). An
 * empty field is left out, so the server's default applies; a secret left empty keeps the one the
 * server holds (it never sends it back). Numbers stay text when they are not numbers, so the
 * server's own message says what is wrong.
 */
export function channelConfig(kind: string, values: Record<string, string | boolean>): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const f of CHANNEL_KINDS[kind]?.fields ?? []) {
    const v = values[f.key];
    if (f.type === "check") {
      if (typeof v === "boolean" && v !== f.default) config[f.key] = v;
      continue;
    }
    const text = typeof v === "string" ? v.trim() : "";
    if (!text) continue;
    if (f.type === "number") config[f.key] = Number.isFinite(Number(text)) ? Number(text) : text;
    else if (f.type === "list") config[f.key] = text.split(",").map((s) => s.trim()).filter(Boolean);
    else if (f.type === "headers") config[f.key] = parseHeaders(text);
    else config[f.key] = text;
  }
  return config;
}

/** A silence matcher as the API takes it. */
export interface Matcher {
  name: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

/**
 * The matchers that silence exactly one alert group: its rule (`alertname`) and each group label.
 * An alert's labels are the rule's name, the rule's labels and its group-by values; the rule's own
 * labels are shared by every group, so the name and the group are what tell this one apart.
 */
export function alertMatchers(rule: string, group: Record<string, unknown> | null | undefined): Matcher[] {
  const out: Matcher[] = [{ name: "alertname", op: "=", value: rule }];
  for (const [name, value] of Object.entries(group ?? {})) {
    if (name !== "alertname") out.push({ name, op: "=", value: value === null || value === undefined ? "" : String(value) });
  }
  return out;
}

/** Matchers as Alertmanager writes them: `alertname="x", service=~"a|b"`. */
export function matchersText(matchers: Matcher[]): string {
  return matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(", ");
}

/** Bytes for reading: `0 B`, `812 B`, `1.4 KB`, `23.0 MB` (powers of 1024, as `du -h`). */
export function bytesText(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? "-" : ""}${i === 0 ? String(Math.round(v * 10) / 10) : v.toFixed(1)} ${units[i]}`;
}

/** A count with thousands grouped (`12,345`), the same in every locale the tests run under. */
export function countText(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** How long from `now` until `ns` in words (`in 2h 5m`, `3d ago`), for expiries and silences. */
export function relativeText(ns: number, nowMs: number): string {
  const ms = ns / 1e6 - nowMs;
  let s = Math.round(Math.abs(ms) / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  if (!parts.length) parts.push(`${s}s`);
  const text = parts.join(" ");
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * Whether a matcher holds for an alert's labels, as the server decides (server/features/alerts/silences.py):
 * a missing label is the empty string; a regex matches the whole value. The server's regexes are
 * RE2; the browser reads them as JavaScript's, which agree on what silences use (alternatives,
 * classes, repeats); a pattern JavaScript cannot read matches nothing here.
 */
export function matcherHolds(m: Matcher, labels: Record<string, unknown>): boolean {
  const raw = labels[m.name];
  const value = raw === null || raw === undefined ? "" : String(raw);
  if (m.op === "=") return value === m.value;
  if (m.op === "!=") return value !== m.value;
  let hit: boolean;
  try {
    hit = new RegExp(`^(?:${m.value})$`).test(value);
  } catch {
    return false;
  }
  return m.op === "=~" ? hit : !hit;
}

/** The id of the first silence whose matchers all hold for `labels`, or null. */
export function silencedBy(labels: Record<string, unknown>, silences: { id: number; matchers: Matcher[] }[]): number | null {
  return silences.find((s) => s.matchers.every((m) => matcherHolds(m, labels)))?.id ?? null;
}

/** A retention rule as the API takes it (server/features/retention/rules.py). */
export interface RetentionRule {
  name: string;
  match?: Partial<Record<"tenant" | "service" | "source" | "level", string | string[]>>;
  priority?: number;
  hot?: string;
  warm?: string;
  cold?: string;
  delete?: string;
  sample?: { after: string; keep: number | string };
}

export const MATCH_KEYS = ["tenant", "service", "source", "level"] as const;

/** `a, b` → `["a", "b"]`, `a` → `"a"`, empty → undefined (matches anything). */
function matchValue(text: string): string | string[] | undefined {
  const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
  return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : parts;
}

/**
 * A retention rule from its form's text fields (name, tenant, service, source, level, hot, warm,
 * cold, delete, priority, keep — a percentage — and after). Empty fields are left out; what is not
 * a number stays text so the server's message names it. A sample needs both its fields: one alone
 * is sent as typed, and the server says which one is missing.
 */
export function retentionRule(v: Record<string, string>): RetentionRule {
  const t = (k: string) => (v[k] ?? "").trim();
  const rule: RetentionRule = { name: t("name") };
  const match: RetentionRule["match"] = {};
  for (const k of MATCH_KEYS) {
    const value = matchValue(v[k] ?? "");
    if (value !== undefined) match[k] = value;
  }
  if (Object.keys(match).length) rule.match = match;
  for (const k of ["hot", "warm", "cold", "delete"] as const) if (t(k)) rule[k] = t(k);
  if (t("priority")) rule.priority = /^-?\d+$/.test(t("priority")) ? Number(t("priority")) : (t("priority") as unknown as number);
  if (t("keep") || t("after")) {
    const keep = t("keep").replace(/%$/, "").trim();
    const n = Number(keep);
    rule.sample = { after: t("after"), keep: keep !== "" && Number.isFinite(n) ? n / 100 : keep };
  }
  return rule;
}

/** The form's text of a stored rule (the inverse of {@link retentionRule}). */
export function retentionFields(rule: RetentionRule): Record<string, string> {
  const out: Record<string, string> = { name: rule.name };
  for (const k of MATCH_KEYS) {
    const value = rule.match?.[k];
    out[k] = Array.isArray(value) ? value.join(", ") : value ?? "";
  }
  for (const k of ["hot", "warm", "cold", "delete"] as const) out[k] = rule[k] ?? "";
  out.priority = rule.priority ? String(rule.priority) : "";
  out.keep = rule.sample ? String(Math.round(Number(rule.sample.keep) * 10000) / 100) : "";
  out.after = rule.sample?.after ?? "";
  return out;
}

/** The Settings › Silences form filled with the matchers of one alert group (its rule and group). */
export function silenceUrl(rule: string, group: Record<string, unknown> | null | undefined): string {
  const p = new URLSearchParams();
  for (const m of alertMatchers(rule, group)) p.append("matcher", `${m.name}${m.op}${m.value}`);
  return `/ui/settings/silences?${p}`;
}
