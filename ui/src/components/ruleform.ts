// The alert rule form of the Alerts page: fields instead of JSON, a live preview and the server's
// validation messages next to the field they name.
//
// The preview asks the server, never guesses: POST /api/v1/alerts/test evaluates the rule as it
// stands (nothing saved, no state changed) now, and at the ends of the PREVIEW_POINTS windows
// before, so the chart shows the rule's own value — its query, window, group_by and delay —
// against the threshold. A rule the server refuses shows why under the field, before saving.
// Options the form has no field for (annotations, delay, repeat_interval, other labels, an
// anomaly or new_pattern condition) are kept as they were stored. A clock_skew rule is checked
// here as the API checks it (rulespec.ts clockSkewProblems), so its refusals show as it is typed.

import { ApiError, getJSON, postJSON, request, type Row } from "../api";
import { clear, h } from "../dom";
import { durationMs, formatTime, iso } from "../timerange";
import { clockSkewProblems, conditionParts, keptOptions, worstValue } from "../rulespec";
import { type FieldError, fieldErrors, messageErrors, showFieldErrors } from "../fielderrors";
import { type LineChart, lineChart } from "./linechart";

export interface TestAnswer {
  firing: boolean;
  condition: string;
  at_ns: number;
  groups: { group: Record<string, unknown>; value: number | null; active: boolean }[];
  elapsed_ms: number;
}

/** How many earlier windows the preview chart evaluates (besides now). */
export const PREVIEW_POINTS = 12;

function field(label: string, input: HTMLElement, name: string, hint = ""): HTMLElement {
  return h("label", { class: "field", "data-field": name }, h("span", { class: "field-label" }, label), input,
    hint ? h("span", { class: "hint" }, hint) : null,
    h("span", { class: "field-error", "data-error-for": name, role: "alert", hidden: true }));
}

const text = (id: string, value: string, attrs: Row = {}) => {
  const el = h("input", { type: "text", id, autocomplete: "off", spellcheck: "false", ...attrs } as never) as HTMLInputElement;
  el.value = value;
  return el;
};

const groupText = (g: Record<string, unknown>) => Object.entries(g).map(([k, v]) => `${k}=${v}`).join(", ") || "all";

export interface RuleForm {
  el: HTMLElement;
  destroy(): void;
}

/** The form for a new rule (`name` null) or for the stored rule `name` with its `spec`. `done`
 * runs after a successful save (with the rule's name), `cancel` on Cancel. */
export function ruleForm(name: string | null, spec: Row, done: (saved: string) => void, cancel: () => void): RuleForm {
  const parts = conditionParts(spec.condition);
  const labels = (spec.labels && typeof spec.labels === "object" ? spec.labels : {}) as Record<string, string>;
  const inName = text("rule-name", String(spec.name ?? name ?? ""), { maxlength: "200" });
  const inQuery = text("rule-query", String(spec.query ?? "*"), { class: "mono" });
  const kind = h("select", { id: "rule-kind" },
    h("option", { value: "count" }, "number of records"),
    h("option", { value: "ratio" }, "share matching a filter"),
    h("option", { value: "value" }, "a column of the query's stats"),
    h("option", { value: "absent" }, "no records at all"),
    h("option", { value: "clock_skew" }, "a host's clock is off (ms)"),
    parts ? null : h("option", { value: "kept" }, "as stored (anomaly, new pattern)"));
  kind.value = parts?.kind ?? "kept";
  const numerator = text("rule-numerator", parts?.numerator || "status:>=500", { class: "mono" });
  const column = text("rule-column", parts?.column ?? "");
  const op = h("select", { id: "rule-op" }, [">", ">=", "<", "<="].map((o) => h("option", { value: o }, o)));
  op.value = parts?.op ?? ">";
  const threshold = h("input", { type: "number", id: "rule-threshold", step: "any", inputmode: "decimal" });
  threshold.value = parts?.threshold ?? "0";
  const window_ = text("rule-window", String(spec.window ?? "5m"));
  const every = text("rule-interval", String(spec.interval ?? "1m"));
  const forDur = text("rule-for", String(spec.for ?? "0s"));
  const groupBy = text("rule-group", Array.isArray(spec.group_by) ? spec.group_by.join(", ") : "",
    { placeholder: "service, host" });
  const severity = text("rule-severity", labels.severity ?? "page");
  const enabled = h("input", { type: "checkbox", id: "rule-enabled" });
  enabled.checked = spec.enabled !== false;
  const channels = h("div", { class: "channel-list", id: "rule-channels" });
  const chosen = new Set(Array.isArray(spec.channels) ? spec.channels.map(String) : []);
  const numeratorField = field("Matching", numerator, "condition", "the share of the records that also match this");
  const columnField = field("Column", column, "condition", "a column of the query's | stats");
  const skewHint = h("p", { class: "hint", id: "rule-skew-hint", hidden: true },
    "Fires for each clock (the ALB, each NGINX host, each app instance) whose offset, estimated from the " +
    "requests, is past the threshold in ms even at the near end of its uncertainty. The query is *; " +
    "one alert per clock.");
  const thresholdRow = h("div", { class: "field-row", id: "rule-threshold-row" },
    field("is", op, "condition"), field("than", threshold, "condition"));
  const condition = h("code", { id: "rule-condition" });
  const verdict = h("div", { class: "alert-preview", id: "rule-preview", "aria-live": "polite" });
  const chartBox = h("div", { class: "rule-preview-chart", id: "rule-preview-chart" });
  const error = h("p", { class: "form-error", id: "rule-error", role: "alert" });
  const kept = keptOptions(spec);
  const otherLabels = Object.keys(labels).filter((k) => k !== "severity");
  const keptNote = kept.length || otherLabels.length || kind.value === "kept"
    ? h("p", { class: "hint", id: "rule-kept" }, "Kept as stored: ",
      [...(kind.value === "kept" ? ["the condition"] : []), ...kept, ...otherLabels.map((l) => `label ${l}`)].join(", "), ".")
    : null;
  const save = h("button", { type: "submit", class: "primary", id: "rule-save" }, "Save rule");
  const form = h("form", { class: "rule-form", id: "rule-form", novalidate: true },
    h("h2", null, name ? `Edit rule “${name}”` : "New rule"),
    h("div", { class: "field-row" }, field("Name", inName, "name")),
    h("div", { class: "field-row" }, field("Query", inQuery, "query", "the records the rule counts")),
    h("div", { class: "field-row" }, field("Alert on", kind, "condition"), numeratorField, columnField),
    thresholdRow, skewHint,
    h("p", { class: "hint" }, "Condition: ", condition),
    h("div", { class: "field-row" }, field("Over the last", window_, "window"), field("Checked every", every, "interval"),
      field("For at least", forDur, "for")),
    h("div", { class: "field-row" }, field("One alert per", groupBy, "group_by"), field("Severity", severity, "labels")),
    h("fieldset", { class: "channels" }, h("legend", null, "Notify"), channels,
      h("span", { class: "field-error", "data-error-for": "channels", role: "alert", hidden: true })),
    h("label", { class: "check" }, enabled, "enabled"),
    keptNote,
    h("h3", null, "Preview: the rule over the recent windows, before saving"), verdict, chartBox,
    h("div", { class: "row" }, save, h("button", { type: "button", id: "rule-cancel", onclick: cancel }, "Cancel")), error);
  const el = h("section", { class: "card rule-editor", id: "rule-editor" }, form);

  const conditionValue = (): unknown => {
    const t = kind.value;
    if (t === "kept") return spec.condition;
    if (t === "absent") return "absent";
    const lhs = t === "count" || t === "clock_skew" ? t : t === "ratio" ? `ratio(${numerator.value.trim()})` : column.value.trim();
    return `${lhs} ${op.value} ${threshold.value === "" ? "0" : threshold.value}`;
  };
  const rule = (): Row => ({
    ...spec,
    name: inName.value.trim(), query: inQuery.value.trim() || "*", condition: conditionValue(),
    window: window_.value.trim(), interval: every.value.trim(), for: forDur.value.trim(),
    group_by: groupBy.value.split(",").map((s) => s.trim()).filter(Boolean),
    labels: { ...labels, severity: severity.value.trim() || "page" },
    channels: [...channels.querySelectorAll<HTMLInputElement>("input:checked")].map((c) => c.value),
    enabled: enabled.checked,
  });

  /** Each message beside its field; a message naming no field goes under the form. */
  function showErrors(errors: FieldError[] | null) {
    showFieldErrors(form, error, errors ?? []);
  }

  let chart: LineChart | null = null;
  let timer: number | undefined;
  let controller: AbortController | null = null;
  const test = (body: Row, at: number | null, signal: AbortSignal) =>
    postJSON<TestAnswer>("/api/v1/alerts/test", at === null ? { rule: body } : { rule: body, at: iso(at) }, signal);

  async function preview() {
    controller?.abort();
    controller = new AbortController();
    const mine = controller.signal;
    const body = { ...rule(), name: inName.value.trim() || "preview" };
    verdict.dataset.state = "loading";
    let now: TestAnswer;
    try {
      now = await test(body, null, mine);
    } catch (err) {
      if ((err as Error).name === "AbortError" || mine.aborted) return;
      clear(verdict);
      verdict.dataset.state = "error";
      const msg = err instanceof ApiError ? err.message : String((err as Error).message ?? err);
      // a refusal of the rule: each message beside its field; what names no field stays here
      const rest = h("span");
      const marked = err instanceof ApiError && err.status < 500 ? showFieldErrors(form, rest, fieldErrors(err)) : null;
      if (!marked) showErrors(null);
      verdict.append(h("p", { class: "form-error", id: "rule-refused" }, "The server refuses this rule: ",
        marked ? "see the fields marked above." : msg, marked && rest.textContent ? ` ${rest.textContent}` : ""));
      chart?.destroy();
      chart = null;
      clear(chartBox);
      return;
    }
    if (mine.aborted) return;
    showErrors(null);
    clear(verdict);
    verdict.dataset.state = now.firing ? "firing" : "ok";
    verdict.append(h("p", { class: now.firing ? "preview-verdict firing" : "preview-verdict", id: "rule-verdict" },
      now.firing ? "Would fire now" : "Would not fire now", ` (${now.condition}; evaluated in ${now.elapsed_ms.toFixed(0)} ms)`));
    if (now.groups.length) {
      verdict.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "rule-preview-groups" },
        h("thead", null, h("tr", null, h("th", null, "group"), h("th", { class: "num" }, "value now"), h("th", null, "holds"))),
        h("tbody", null, now.groups.slice(0, 10).map((g) => h("tr", { "data-active": String(g.active) },
          h("td", null, groupText(g.group)),
          h("td", { class: "num" }, g.value === null ? "—" : String(+g.value.toFixed(4))),
          h("td", null, g.active ? "yes" : "no")))))));
    } else {
      verdict.append(h("p", { class: "hint" }, "No group has a value in the window now."));
    }
    await history(body, now, mine);
  }

  /** The rule's value at the end of each of the windows before now, against the threshold. */
  async function history(body: Row, now: TestAnswer, signal: AbortSignal) {
    const stepMs = Math.max(durationMs(String(body.window)) ?? 0, durationMs(String(body.interval)) ?? 0, 10_000);
    const nowMs = Math.floor(now.at_ns / 1e6);
    const times = Array.from({ length: PREVIEW_POINTS + 1 }, (_, i) => nowMs - (PREVIEW_POINTS - i) * stepMs);
    const answers: (TestAnswer | null)[] = new Array(times.length).fill(null);
    answers[times.length - 1] = now;
    // three at a time: a preview must not crowd out the server's own work
    for (let i = 0; i < times.length - 1; i += 3) {
      const batch = times.slice(i, Math.min(i + 3, times.length - 1));
      const got = await Promise.all(batch.map((t) => test(body, t, signal).catch(() => null)));
      if (signal.aborted) return;
      got.forEach((a, k) => { answers[i + k] = a; });
    }
    const thr = typeof body.condition === "string" ? conditionParts(body.condition) : null;
    const op = thr?.op ?? ">";
    // the group nearest to firing: the largest value for > and >=, the smallest for < and <=
    // no clock estimated is no value, not an offset of 0 ms
    const values = answers.map((a) => (a && (thr?.kind !== "clock_skew" || a.groups?.length)
      ? worstValue((a.groups ?? []).map((g) => g.value), op) : null));
    chart?.destroy();
    clear(chartBox);
    const series = [{ label: `value (${op.startsWith("<") ? "smallest" : "largest"} group)`, color: "#2563eb", values }];
    if (thr && thr.kind !== "absent") {
      series.push({ label: `threshold ${thr.op} ${thr.threshold}`, color: "#dc2626",
        values: times.map(() => Number(thr.threshold)) });
    }
    const x = times.map((t) => t / 1000);
    chart = lineChart("", "", x, series, [x[0], x[x.length - 1]], undefined, 150);
    const held = answers.filter((a) => a?.firing).length;
    chartBox.dataset.points = String(values.filter((v) => v !== null).length);
    chartBox.dataset.held = String(held);
    chartBox.append(chart.el, h("p", { class: "hint", id: "rule-preview-summary" },
      `Evaluated at the end of each of the last ${PREVIEW_POINTS} windows (${formatTime(times[0])} – now): ` +
      `the condition held at ${held} of ${times.length}.`));
  }

  /** What the API would refuse that the form can tell now (a clock_skew rule's shape). */
  const problems = (): string[] => {
    if (kind.value !== "clock_skew") return [];
    const r = rule();
    return clockSkewProblems({ query: String(r.query), op: op.value, threshold: threshold.value,
      group_by: r.group_by as string[] });
  };
  const sync = () => {
    numeratorField.hidden = kind.value !== "ratio";
    columnField.hidden = kind.value !== "value";
    thresholdRow.hidden = kind.value === "absent" || kind.value === "kept";
    skewHint.hidden = kind.value !== "clock_skew";
    const c = conditionValue();
    condition.textContent = typeof c === "string" ? c : JSON.stringify(c);
    window.clearTimeout(timer);
    const found = problems();
    if (found.length) {  // said beside the fields now; the server is asked once they are right
      controller?.abort();
      clear(verdict);
      verdict.dataset.state = "invalid";
      verdict.append(h("p", { class: "hint" }, "The server would refuse this rule: see the fields marked above."));
      chart?.destroy();
      chart = null;
      clear(chartBox);
      showErrors(messageErrors(found.join("; ")));
      return;
    }
    timer = window.setTimeout(() => void preview(), 400);
  };
  form.addEventListener("input", sync);
  form.addEventListener("change", sync);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // what saving answers stays on screen: a preview still to come would replace its messages
    window.clearTimeout(timer);
    controller?.abort();
    showErrors(null);
    const body = rule();
    const target = String(body.name ?? "");
    if (!target) {
      showErrors([{ field: "name", message: "a rule needs a name" }]);
      inName.focus();
      return;
    }
    const found = problems();
    if (found.length) {
      showErrors(messageErrors(found.join("; ")));
      return;
    }
    try {
      if (!name) {
        await postJSON("/api/v1/alerts/rules", body);
      } else {
        await putRule(target, body);
        if (name !== target) await putRule(name, null);
      }
    } catch (err) {
      // each message beside its field, what was typed kept; the first field marked takes the focus
      const errors = err instanceof ApiError && err.status === 409
        ? [{ field: "name", message: `a rule is already called “${target}”: choose another name` }] : fieldErrors(err);
      showFieldErrors(form, error, errors)?.focus();
      return;
    }
    done(target);
  });

  void (async () => {
    try {
      const items = (await getJSON<{ channels?: { name: string; kind: string }[] }>("/api/v1/channels")).channels ?? [];
      if (!items.length) channels.append(h("p", { class: "hint" }, "No channels yet: the alert shows on this page only."));
      for (const c of items) {
        const box = h("input", { type: "checkbox", value: c.name, name: "channel" });
        box.checked = chosen.has(c.name);
        channels.append(h("label", { class: "check" }, box, `${c.name} (${c.kind})`));
      }
    } catch (err) {
      channels.append(h("p", { class: "form-error" }, (err as Error).message));
    }
    sync();
  })();
  return {
    el,
    destroy() {
      window.clearTimeout(timer);
      controller?.abort();
      chart?.destroy();
    },
  };
}

async function putRule(name: string, body: Row | null): Promise<void> {
  await request(`/api/v1/alerts/rules/${encodeURIComponent(name)}`, {
    method: body === null ? "DELETE" : "PUT",
    body: body === null ? undefined : JSON.stringify(body),
    headers: body === null ? {} : { "Content-Type": "application/json" },
  });
}
