// From a search to the rest: Save query, Add to dashboard (an existing one or a new one, the
// panel made from the query) and Create alert (a form, not JSON: the condition built from
// choices, channels picked from a list, and a live preview of what the rule would say now through
// POST /api/v1/alerts/test). Each is a dialog; the server validates and its message is shown.

import { ApiError, getJSON, postJSON } from "../api";
import { type DashboardSpec, dashboardUrl, getDashboard, listDashboards, type PanelType, saveDashboard }
  from "../dashboards";
import { clear, h } from "../dom";
import { fieldErrors, showFieldErrors } from "../fielderrors";
import { splitPipes } from "../querytext";
import { link } from "../router";
import { durationText, resolve, type TimeRange } from "../timerange";

export interface SearchState {
  query(): string;
  range(): TimeRange;
  /** What the last answer was: records, a table or a timechart. */
  kind(): "records" | "table" | "timechart";
}

function dialog(id: string, title: string, ...body: (Node | string)[]): HTMLDialogElement {
  const close = h("button", { type: "button", class: "ghost", "aria-label": "close", "data-action": "close" }, "✕");
  const el = h("dialog", { class: "modal", id, "aria-labelledby": `${id}-title` },
    h("div", { class: "flyout-head" }, h("h2", { id: `${id}-title` }, title), close), ...body) as HTMLDialogElement;
  close.addEventListener("click", () => el.close());
  return el;
}

/** A labelled input; with `name` (a rule field), the box where the server's message about it goes. */
function field(label: string, input: HTMLElement, hint = "", name = ""): HTMLElement {
  return h("label", { class: "field", "data-field": name || null }, h("span", { class: "field-label" }, label), input,
    hint ? h("span", { class: "hint" }, hint) : null,
    name ? h("span", { class: "field-error", "data-error-for": name, role: "alert", hidden: true }) : null);
}

const message = (err: unknown) => (err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error).message ?? err));

/** A duration for a saved query or a dashboard: the range's own (`now-3h` → `3h`), else its length. */
export function rangeDuration(range: TimeRange): string {
  if (range.to === "now" && /^now-\w+$/.test(range.from)) return range.from.slice(4);
  const r = resolve(range);
  return r ? durationText(r.toMs - r.fromMs) : "1h";
}

/** The panel types a query can be, best first. */
export function panelTypes(q: string, kind: string): PanelType[] {
  const pipes = splitPipes(q).slice(1);
  if (kind === "timechart") return ["timechart", "table"];
  if (pipes.length && /^top\b|^rare\b/i.test(pipes[pipes.length - 1])) return ["top", "table"];
  if (kind === "table") return pipes.some((p) => /^stats\b/i.test(p)) ? ["table", "single"] : ["table"];
  return ["logs"];
}

function saveQueryDialog(state: SearchState): HTMLDialogElement {
  const name = h("input", { type: "text", id: "save-name", maxlength: "200", autocomplete: "off" });
  const description = h("input", { type: "text", id: "save-description", autocomplete: "off" });
  const error = h("p", { class: "form-error", id: "save-error", role: "alert" });
  const done = h("p", { class: "hint", id: "save-done", role: "status" });
  const submit = h("button", { type: "submit", class: "primary", id: "save-submit" }, "Save");
  const form = h("form", { class: "modal-form" }, field("Name", name), field("Description", description),
    h("p", { class: "hint", id: "save-summary" }), h("div", { class: "row" }, submit), error, done);
  const el = dialog("save-dialog", "Save query", form);
  el.addEventListener("prepare", () => {
    error.textContent = done.textContent = "";
    const q = state.query();
    name.value = q.length > 80 ? `${q.slice(0, 77)}…` : q;
    (form.querySelector("#save-summary") as HTMLElement).textContent =
      `“${q}”, opened over the last ${rangeDuration(state.range())}.`;
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = done.textContent = "";
    const body = { name: name.value.trim(), query: state.query(), description: description.value.trim(),
      time_range: rangeDuration(state.range()) };
    try {
      await postJSON("/api/v1/saved-queries", body);
      done.textContent = `Saved as “${body.name}”: it is offered in the query box's suggestions.`;
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 409
        ? `A saved query is already called “${body.name}”: choose another name.` : message(err);
    }
  });
  return el;
}

function dashboardDialog(state: SearchState): HTMLDialogElement {
  const target = h("select", { id: "dash-target" });
  const newName = h("input", { type: "text", id: "dash-new-name", autocomplete: "off", maxlength: "200" });
  const newField = field("New dashboard's name", newName);
  const title = h("input", { type: "text", id: "panel-title", autocomplete: "off", maxlength: "200" });
  const type = h("select", { id: "panel-type" });
  const width = h("select", { id: "panel-width" }, h("option", { value: "6" }, "half"), h("option", { value: "12" }, "full"));
  const error = h("p", { class: "form-error", id: "dash-add-error", role: "alert" });
  const done = h("p", { class: "hint", id: "dash-add-done", role: "status" });
  const form = h("form", { class: "modal-form" }, field("Dashboard", target), newField, field("Panel title", title),
    h("div", { class: "field-row" }, field("Shown as", type), field("Width", width)),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "dash-add-submit" }, "Add panel")),
    error, done);
  const el = dialog("dash-dialog", "Add to dashboard", form);
  const syncNew = () => { newField.hidden = target.value !== ""; };
  target.addEventListener("change", syncNew);
  el.addEventListener("prepare", async () => {
    showFieldErrors(form, error, []);
    done.textContent = "";
    const q = state.query();
    title.value = q.length > 80 ? `${q.slice(0, 77)}…` : q;
    clear(type);
    for (const t of panelTypes(q, state.kind())) type.append(h("option", { value: t }, t));
    clear(target);
    target.append(h("option", { value: "" }, "New dashboard…"));
    try {
      for (const d of await listDashboards()) target.append(h("option", { value: d.name }, d.name));
    } catch (err) {
      error.textContent = message(err);
    }
    syncNew();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = done.textContent = "";
    const panel = { title: title.value.trim() || "panel", type: type.value as PanelType, query: state.query(),
      width: Number(width.value) };
    const name = target.value || newName.value.trim();
    try {
      if (target.value) {
        const stored = await getDashboard(target.value);
        const spec: DashboardSpec = { name: stored.name, description: stored.description, time_range: stored.time_range,
          refresh: stored.refresh, panels: [...stored.panels, panel] };
        await saveDashboard(spec, stored.name);
      } else {
        await saveDashboard({ name, description: "", time_range: rangeDuration(state.range()), refresh: null,
          panels: [panel] }, null);
      }
    } catch (err) {
      error.textContent = message(err);
      return;
    }
    clear(done);
    done.append(`Added to “${name}”. `, link(dashboardUrl(name), "Open the dashboard →", "dash-open"));
  });
  return el;
}

interface Channel {
  name: string;
  kind: string;
}

interface TestAnswer {
  firing: boolean;
  condition: string;
  groups: { group: Record<string, unknown>; value: number | null; active: boolean }[];
  elapsed_ms: number;
}

function alertDialog(state: SearchState): HTMLDialogElement {
  const name = h("input", { type: "text", id: "alert-name", autocomplete: "off", maxlength: "200" });
  const query = h("input", { type: "text", id: "alert-query", class: "mono", autocomplete: "off", spellcheck: "false" });
  const kind = h("select", { id: "alert-kind" },
    h("option", { value: "count" }, "number of records"),
    h("option", { value: "ratio" }, "share of records matching a filter"),
    h("option", { value: "value" }, "a column of the query's stats"),
    h("option", { value: "absent" }, "no records at all"));
  const numerator = h("input", { type: "text", id: "alert-numerator", class: "mono", value: "status:>=500",
    autocomplete: "off", spellcheck: "false" });
  numerator.value = "status:>=500";
  const column = h("input", { type: "text", id: "alert-column", autocomplete: "off" });
  const op = h("select", { id: "alert-op" }, [">", ">=", "<", "<="].map((o) => h("option", { value: o }, o)));
  const threshold = h("input", { type: "number", id: "alert-threshold", step: "any", value: "0" });
  threshold.value = "0";
  const window_ = h("input", { type: "text", id: "alert-window", value: "5m", autocomplete: "off" });
  window_.value = "5m";
  const every = h("input", { type: "text", id: "alert-interval", value: "1m", autocomplete: "off" });
  every.value = "1m";
  const forDur = h("input", { type: "text", id: "alert-for", value: "0s", autocomplete: "off" });
  forDur.value = "0s";
  const groupBy = h("input", { type: "text", id: "alert-group", placeholder: "service, host", autocomplete: "off" });
  const severity = h("select", { id: "alert-severity" },
    ["page", "ticket", "info"].map((s) => h("option", { value: s }, s)));
  const channels = h("div", { class: "channel-list", id: "alert-channels" });
  const numeratorField = field("Matching", numerator, "the share of the records that also match this filter", "condition");
  const columnField = field("Column", column, "a column of the query's | stats", "condition");
  const condition = h("code", { id: "alert-condition" });
  const preview = h("div", { class: "alert-preview", id: "alert-preview", "aria-live": "polite" });
  const error = h("p", { class: "form-error", id: "alert-error", role: "alert" });
  const done = h("p", { class: "hint", id: "alert-done", role: "status" });
  const submit = h("button", { type: "submit", class: "primary", id: "alert-submit" }, "Create alert");
  const form = h("form", { class: "modal-form" },
    field("Name", name, "", "name"), field("Query", query, "", "query"),
    h("div", { class: "field-row" }, field("Alert on", kind, "", "condition"), numeratorField, columnField),
    h("div", { class: "field-row", id: "alert-threshold-row" }, field("is", op, "", "condition"),
      field("than", threshold, "", "condition")),
    h("p", { class: "hint" }, "Condition: ", condition),
    h("div", { class: "field-row" }, field("Over the last", window_, "", "window"),
      field("Checked every", every, "", "interval"), field("For at least", forDur, "", "for")),
    h("div", { class: "field-row" }, field("One alert per", groupBy, "", "group_by"),
      field("Severity", severity, "", "labels")),
    h("fieldset", { class: "channels" }, h("legend", null, "Notify"), channels,
      h("span", { class: "field-error", "data-error-for": "channels", role: "alert", hidden: true })),
    h("h3", null, "Preview: what the rule says now"), preview,
    h("div", { class: "row" }, submit), error, done);
  const el = dialog("alert-dialog", "Create alert", form);

  const conditionText = () => {
    const t = kind.value;
    if (t === "absent") return "absent";
    const lhs = t === "count" ? "count" : t === "ratio" ? `ratio(${numerator.value.trim()})` : column.value.trim();
    return `${lhs} ${op.value} ${threshold.value === "" ? "0" : threshold.value}`;
  };
  const rule = () => ({
    name: name.value.trim(), query: query.value.trim() || "*", condition: conditionText(), window: window_.value.trim(),
    interval: every.value.trim(), for: forDur.value.trim(),
    group_by: groupBy.value.split(",").map((s) => s.trim()).filter(Boolean),
    labels: { severity: severity.value },
    channels: [...channels.querySelectorAll<HTMLInputElement>("input:checked")].map((c) => c.value),
  });

  let timer: number | undefined;
  let controller: AbortController | null = null;
  async function runPreview() {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    preview.dataset.state = "loading";
    try {
      const answer = await postJSON<TestAnswer>("/api/v1/alerts/test", { rule: { ...rule(), name: rule().name || "preview" } },
        mine.signal);
      if (mine.signal.aborted) return;
      showFieldErrors(form, error, []);
      clear(preview);
      preview.dataset.state = answer.firing ? "firing" : "ok";
      preview.append(h("p", { class: answer.firing ? "preview-verdict firing" : "preview-verdict" },
        answer.firing ? "Would fire now" : "Would not fire now", ` (${answer.condition}; evaluated in ${answer.elapsed_ms.toFixed(0)} ms)`));
      if (answer.groups.length) {
        preview.append(h("div", { class: "table-box" }, h("table", { class: "grid" }, h("thead", null, h("tr", null, h("th", null, "group"),
          h("th", { class: "num" }, "value"), h("th", null, "holds"))),
        h("tbody", null, answer.groups.slice(0, 10).map((g) => h("tr", null,
          h("td", null, Object.entries(g.group).map(([k, v]) => `${k}=${v}`).join(", ") || "all"),
          h("td", { class: "num" }, g.value === null ? "—" : String(+g.value.toFixed(4))),
          h("td", null, g.active ? "yes" : "no")))))));
      }
    } catch (err) {
      if ((err as Error).name === "AbortError") return;
      clear(preview);
      preview.dataset.state = "error";
      // a refusal of the rule: each message beside its field; what names no field stays here
      const rest = h("span");
      const marked = err instanceof ApiError && err.status < 500 ? showFieldErrors(form, rest, fieldErrors(err)) : null;
      if (!marked) showFieldErrors(form, error, []);
      preview.append(h("p", { class: "form-error", id: "alert-refused" }, marked
        ? `The server refuses this rule: see the fields marked above.${rest.textContent ? ` ${rest.textContent}` : ""}`
        : message(err)));
    }
  }
  const sync = () => {
    numeratorField.hidden = kind.value !== "ratio";
    columnField.hidden = kind.value !== "value";
    (form.querySelector("#alert-threshold-row") as HTMLElement).hidden = kind.value === "absent";
    condition.textContent = conditionText();
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void runPreview(), 350);
  };
  form.addEventListener("input", sync);
  form.addEventListener("change", sync);
  el.addEventListener("prepare", async () => {
    showFieldErrors(form, error, []);
    done.textContent = "";
    const q = state.query();
    const pipes = splitPipes(q).slice(1);
    query.value = q;
    name.value = `search: ${splitPipes(q)[0]}`.slice(0, 120).trim();
    kind.value = pipes.some((p) => /^stats\b/i.test(p)) ? "value" : "count";
    clear(channels);
    try {
      const items = (await getJSON<{ channels?: Channel[] }>("/api/v1/channels")).channels ?? [];
      if (!items.length) channels.append(h("p", { class: "hint" }, "No channels yet: the alert shows on the Alerts page."));
      for (const c of items) {
        channels.append(h("label", { class: "check" }, h("input", { type: "checkbox", value: c.name, name: "channel" }),
          `${c.name} (${c.kind})`));
      }
    } catch (err) {
      channels.append(h("p", { class: "form-error" }, message(err)));
    }
    sync();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // what saving answers stays on screen: a preview still to come would replace its messages
    window.clearTimeout(timer);
    controller?.abort();
    showFieldErrors(form, error, []);
    done.textContent = "";
    const body = rule();
    try {
      await postJSON("/api/v1/alerts/rules", body);
    } catch (err) {
      // each message beside its field, what was typed kept; the first field marked takes the focus
      const errors = err instanceof ApiError && err.status === 409
        ? [{ field: "name", message: `a rule is already called “${body.name}”: choose another name` }]
        : err instanceof ApiError && err.status < 500 ? fieldErrors(err) : [{ field: null, message: message(err) }];
      showFieldErrors(form, error, errors)?.focus();
      return;
    }
    clear(done);
    done.append(`Created “${body.name}”. `, link("/ui/alerts", "Open alerts →", "alert-open"));
  });
  return el;
}

export type ActionKind = "save" | "dashboard" | "alert";
const made = new Map<ActionKind, HTMLDialogElement>();

/** Open one action's dialog (made once, prepared each time: lists loaded, fields filled). */
export function openAction(kind: ActionKind, state: SearchState, host: HTMLElement): void {
  let d = made.get(kind);
  if (!d || !d.isConnected) {
    d = kind === "save" ? saveQueryDialog(state) : kind === "dashboard" ? dashboardDialog(state) : alertDialog(state);
    made.set(kind, d);
    host.append(d);
  }
  d.dispatchEvent(new Event("prepare"));
  d.showModal();
}

