// Field names as the query language reads them, built in the browser from a record's keys — the
// same text the server builds (features/query/fields.py key_segment and fieldstats' names, which
// /api/v1/fields answers with), so a click on a value filters on exactly the key it shows:
//
// - a key that is not a bare name (a space, a dot inside the key, a backtick, a digit first …)
//   goes in backticks, with \` and \\ escaped: `user name`, `a.b`;
// - nested keys are joined by dots: error.type, order.`line items`.sku;
// - an attribute whose name a query reads as a column (`status`, `service`, `http.path`) is
//   written attributes.<name>, so it names the attribute, never the column.
//
// A wire record (DESIGN §2) holds the canonical fields, the `http` object of typed fields, and the
// attributes inline at its top level; recordFields tells the three apart.

import { ExactNumber, type Row } from "./api";

/** server/engine/store/schema.sql's columns (tests/ui/test_fieldnames.py holds the two equal). */
export const COLUMNS = [
  "tenant", "timestamp", "observed_timestamp", "level", "severity_number", "service", "source", "host",
  "instance", "env", "version", "message", "trace_id", "span_id", "request_id", "http_method", "http_path",
  "http_status", "http_duration_ms", "http_client_ip", "http_user_agent", "http_bytes_sent", "http_referer",
  "attributes", "pattern_id", "ingest_batch",
];
/** record.py HTTP_FIELDS: `status` and `http.status` both name the column http_status. */
export const HTTP_FIELDS = ["method", "path", "status", "duration_ms", "client_ip", "user_agent", "bytes_sent", "referer"];
/** The top-level keys of a wire record that are canonical fields (record.py to_wire), not attributes. */
const CANONICAL = new Set(["timestamp", "observed_timestamp", "level", "severity_number", "pattern_id", "service",
  "source", "host", "instance", "env", "version", "message", "trace_id", "span_id", "request_id", "tenant"]);
const TIME_ALIASES = new Set(["_time", "@timestamp"]);

const BARE_KEY = /^(?:[A-Za-z_@]|[^\x00-\x7f\s])(?:[A-Za-z0-9_@-]|[^\x00-\x7f\s])*$/u;
const BARE_TAIL = /^(?:[A-Za-z0-9_@-]|[^\x00-\x7f\s])+$/u;
const COLUMN_SET = new Set(COLUMNS);
const HTTP_SET = new Set(HTTP_FIELDS);

/** One key as a part of a dotted name: bare when the language reads it back as that key (after
 * a dot a part may start with a digit), else in backticks. */
export function keySegment(key: string, first: boolean): string {
  if (BARE_KEY.test(key) || (!first && BARE_TAIL.test(key))) return key;
  return "`" + key.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

/** Would the server read this name as a column (or the whole attribute object), not a path? */
export function namesColumn(name: string): boolean {
  if (name.includes("`")) return false;
  if (TIME_ALIASES.has(name) || HTTP_SET.has(name)) return true;
  if (name.startsWith("http.") && HTTP_SET.has(name.slice(5))) return true;
  // promoted attribute columns (attr_<key>) may join the table: quoting them is always safe
  return (COLUMN_SET.has(name) && name !== "attributes_exact") || /^attr_[a-z0-9_]+$/.test(name);
}

/** The name that reaches the attribute at these keys (nested from the top), as the server names it. */
export function attributeName(keys: string[]): string {
  const name = keys.map((k, i) => keySegment(k, i === 0)).join(".");
  return namesColumn(name) ? `attributes.${name}` : name;
}

/** The keys of a name with backticks (`a.\`b c\`` → ["a", "b c"]); bare parts split at dots. */
export function nameKeys(name: string): string[] | null {
  const out: string[] = [];
  const re = /`((?:[^`\\]|\\[\s\S])*)`|([^.`]+)/y;
  let pos = 0;
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(name);
    if (!m) return null;
    out.push(m[1] !== undefined ? m[1].replace(/\\([\s\S])/g, "$1") : m[2]);
    pos = re.lastIndex;
    if (pos === name.length) return out;
    if (name[pos] !== ".") return null;
    pos++;
  }
}

const isObject = (v: unknown): v is Row =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof ExactNumber);

export interface RecordField {
  /** the name a query reaches it by (`http.status`, `user_id`, `` `user name` ``, `attributes.status`) */
  name: string;
  value: unknown;
  /** an attribute (any JSON value), not a canonical field */
  attribute: boolean;
}

/** Every field of a wire record with the name a query reaches it by; nested attributes as paths. */
export function recordFields(record: Row): RecordField[] {
  const out: RecordField[] = [];
  const walk = (keys: string[], value: unknown) => {
    if (isObject(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) walk([...keys, k], v);
    } else {
      out.push({ name: attributeName(keys), value, attribute: true });
    }
  };
  for (const [key, value] of Object.entries(record)) {
    if (CANONICAL.has(key) && !isObject(value)) {
      out.push({ name: key, value, attribute: false });
    } else if (key === "http" && isObject(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (HTTP_SET.has(k)) out.push({ name: `http.${k}`, value: v, attribute: false });
        else walk(["http", k], v);
      }
    } else {
      walk([key], value);
    }
  }
  return out;
}

/**
 * The value a field name shows from a wire record (undefined when absent): a canonical field,
 * an `http.*` one (or its shorthand), or an attribute path — quoted keys exactly, a bare dotted
 * name nested first, then as one literal key (as the server reads it).
 */
export function valueAt(record: Row, name: string): unknown {
  if (CANONICAL.has(name)) return isObject(record[name]) ? undefined : record[name];
  const http = name.startsWith("http.") ? name.slice(5) : name;
  if (HTTP_SET.has(http) && isObject(record.http) && http in record.http) return record.http[http];
  if (TIME_ALIASES.has(name)) return record.timestamp;
  let path = name;
  if (path.startsWith("attributes.") && path.length > 11) path = path.slice(11);
  const keys = nameKeys(path);
  if (!keys) return undefined;
  const at = (node: unknown, ks: string[]): unknown => {
    for (const k of ks) {
      if (!isObject(node) || !(k in node)) return undefined;
      node = node[k];
    }
    return node;
  };
  if (path.includes("`")) return at(record, keys);
  // a bare dotted name: every way to group its parts into keys, nested first
  for (const grouping of groupings(keys)) {
    const v = at(record, grouping);
    if (v !== undefined) return v;
  }
  return undefined;
}

function groupings(parts: string[]): string[][] {
  // store/attributes.py spellings(): a.b.c is [a, b, c], [a, "b.c"], ["a.b", c], ["a.b.c"]
  if (parts.length <= 1) return [parts];
  const out: string[][] = [];
  for (let cut = 1; cut <= parts.length; cut++) {
    const head = parts.slice(0, cut).join(".");
    if (cut === parts.length) out.push([head]);
    else for (const rest of groupings(parts.slice(cut))) out.push([head, ...rest]);
  }
  return out;
}
