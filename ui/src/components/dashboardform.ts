// The dashboard editor: the dashboard's own fields and one small form per panel (title, type,
// query, width, unit, and the column of a single value). The server validates (it compiles every
// panel's query); its 400 names each bad field by path (`panels.2.query: …`), and each message is
// shown under the field it is about, so a mistake in the fifth panel is found in the fifth panel.

import { ApiError } from "../api";
import { type DashboardSpec, PANEL_TYPES, type PanelSpec, type PanelType, saveDashboard } from "../dashboards";
import { clear, h } from "../dom";

type Field = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

interface PanelEditor {
  el: HTMLElement;
  read(): PanelSpec;
  fields: Record<string, Field>;
  errors: Record<string, HTMLElement>;
  general: HTMLElement;
}

function errorBox(path: string): HTMLElement {
  return h("p", { class: "field-error", "data-error-for": path, role: "alert", hidden: true });
}

function labelled(text: string, field: Field, error: HTMLElement, extra = ""): HTMLElement {
  return h("label", { class: `field ${extra}`.trim() }, h("span", { class: "field-label" }, text), field, error);
}

function panelEditor(spec: PanelSpec, onRemove: (ed: PanelEditor) => void, onMove: (ed: PanelEditor, by: number) => void): PanelEditor {
  const title = h("input", { type: "text", name: "title", value: spec.title, maxlength: "200", autocomplete: "off" });
  title.value = spec.title;
  const type = h("select", { name: "type" }, PANEL_TYPES.map((t) => h("option", { value: t.type }, t.label)));
  type.value = spec.type;
  const width = h("input", { type: "number", name: "width", min: "1", max: "12", step: "1" });
  width.value = String(spec.width ?? 6);
  const unit = h("input", { type: "text", name: "unit", placeholder: "ms, requests…", autocomplete: "off" });
  unit.value = spec.unit ?? "";
  const column = h("input", { type: "text", name: "column", placeholder: "first column", autocomplete: "off" });
  column.value = spec.column ?? "";
  const query = h("textarea", { name: "query", rows: "2", spellcheck: "false", class: "mono" });
  query.value = spec.query;
  const hint = h("p", { class: "hint type-hint" });
  const fields: Record<string, Field> = { title, type, width, unit, column, query };
  const errors: Record<string, HTMLElement> = {};
  for (const name of Object.keys(fields)) errors[name] = errorBox(name);
  const general = errorBox("");
  const columnField = labelled("Column", column, errors.column, "narrow");
  const sync = () => {
    const t = PANEL_TYPES.find((p) => p.type === type.value) ?? PANEL_TYPES[0];
    hint.textContent = `${t.label}: ${t.hint}, e.g. ${t.example}`;
    columnField.hidden = type.value !== "single";
  };
  type.addEventListener("change", () => {
    // a query still showing the previous type's example follows the new type
    if (!query.value.trim() || PANEL_TYPES.some((p) => p.example === query.value.trim())) {
      query.value = PANEL_TYPES.find((p) => p.type === type.value)?.example ?? query.value;
    }
    sync();
  });
  const heading = h("legend", null, "Panel");
  const ed: PanelEditor = {
    el: h("fieldset", { class: "panel-editor" },
      heading,
      h("div", { class: "panel-editor-tools" },
        h("button", { type: "button", class: "mini", "data-action": "up", title: "move up", onclick: () => onMove(ed, -1) }, "↑"),
        h("button", { type: "button", class: "mini", "data-action": "down", title: "move down", onclick: () => onMove(ed, 1) }, "↓"),
        h("button", { type: "button", class: "mini", "data-action": "remove", onclick: () => onRemove(ed) }, "Remove")),
      h("div", { class: "field-row" },
        labelled("Title", title, errors.title, "wide"),
        labelled("Type", type, errors.type),
        labelled("Width (of 12)", width, errors.width, "narrow"),
        labelled("Unit", unit, errors.unit, "narrow"),
        columnField),
      labelled("Query", query, errors.query, "full"),
      hint, general),
    fields,
    errors,
    general,
    read() {
      const out: PanelSpec = {
        title: title.value.trim(), type: type.value as PanelType, query: query.value.trim(),
        width: width.value === "" ? 6 : Number(width.value),
      };
      if (unit.value.trim()) out.unit = unit.value.trim();
      if (type.value === "single" && column.value.trim()) out.column = column.value.trim();
      return out;
    },
  };
  sync();
  return ed;
}

/** One `loc: message` per part of the server's message (`; ` joins them). */
export function splitErrors(message: string): { loc: string; msg: string }[] {
  return message.split(/; (?=[\w.]+: )/).map((part) => {
    const m = /^([\w.]+): ([\s\S]*)$/.exec(part);
    return m ? { loc: m[1], msg: m[2] } : { loc: "", msg: part };
  });
}

export function dashboardForm(initial: DashboardSpec, original: string | null,
  onSaved: (name: string) => void, onCancel: () => void): HTMLElement {
  const name = h("input", { type: "text", name: "name", id: "dash-name", autocomplete: "off", maxlength: "200" });
  name.value = initial.name;
  const timeRange = h("input", { type: "text", name: "time_range", id: "dash-range", placeholder: "1h" });
  timeRange.value = initial.time_range;
  const refresh = h("input", { type: "text", name: "refresh", id: "dash-refresh", placeholder: "off, or 30s, 1m…" });
  refresh.value = initial.refresh ?? "";
  const description = h("textarea", { name: "description", id: "dash-description", rows: "2" });
  description.value = initial.description;
  const top: Record<string, Field> = { name, time_range: timeRange, refresh, description };
  const topErrors: Record<string, HTMLElement> = {};
  for (const key of Object.keys(top)) topErrors[key] = errorBox(key);
  const general = h("p", { class: "form-error", id: "dash-error", role: "alert" });
  const list = h("div", { class: "panel-editors", id: "panel-editors" });
  let editors: PanelEditor[] = [];

  const renumber = () => {
    clear(list);
    editors.forEach((ed, i) => {
      ed.el.dataset.index = String(i);
      (ed.el.querySelector("legend") as HTMLElement).textContent = `Panel ${i + 1}`;
      list.append(ed.el);
    });
    if (!editors.length) list.append(h("p", { class: "hint" }, "No panels yet."));
  };
  const remove = (ed: PanelEditor) => {
    editors = editors.filter((e) => e !== ed);
    renumber();
  };
  const move = (ed: PanelEditor, by: number) => {
    const i = editors.indexOf(ed);
    const j = i + by;
    if (j < 0 || j >= editors.length) return;
    [editors[i], editors[j]] = [editors[j], editors[i]];
    renumber();
  };
  const add = (spec: PanelSpec) => {
    editors.push(panelEditor(spec, remove, move));
    renumber();
  };
  initial.panels.forEach(add);
  if (!initial.panels.length) renumber();

  const save = h("button", { type: "submit", class: "primary", id: "dash-save" }, "Save");
  const form = h("form", { class: "card dash-form", id: "dash-form", novalidate: true },
    h("h2", null, original === null ? "New dashboard" : `Edit “${original}”`),
    h("div", { class: "field-row" },
      h("label", { class: "field wide" }, h("span", { class: "field-label" }, "Name"), name, topErrors.name),
      h("label", { class: "field narrow" }, h("span", { class: "field-label" }, "Default range"), timeRange,
        topErrors.time_range),
      h("label", { class: "field narrow" }, h("span", { class: "field-label" }, "Auto-refresh"), refresh,
        topErrors.refresh)),
    h("label", { class: "field full" }, h("span", { class: "field-label" }, "Description"), description,
      topErrors.description),
    h("h3", null, "Panels"),
    list,
    h("div", { class: "row" },
      h("button", {
        type: "button", id: "add-panel",
        onclick: () => {
          add({ title: "", type: "timechart", query: PANEL_TYPES[0].example, width: 6 });
          editors[editors.length - 1].fields.title.focus();
        },
      }, "+ Add panel")),
    h("div", { class: "row" }, save,
      h("button", { type: "button", id: "dash-cancel", onclick: () => onCancel() }, "Cancel")),
    general);

  function clearErrors() {
    general.textContent = "";
    for (const box of form.querySelectorAll<HTMLElement>(".field-error")) {
      box.hidden = true;
      box.textContent = "";
    }
    for (const f of form.querySelectorAll(".invalid")) f.classList.remove("invalid");
  }

  /** Put each message under its field; what has no field goes under the form. */
  function showErrors(message: string): void {
    let first: Field | null = null;
    let position: number | null = null;
    const put = (box: HTMLElement | undefined, field: Field | null, msg: string) => {
      if (!box) {
        general.append(general.textContent ? `; ${msg}` : msg);
        return;
      }
      box.hidden = false;
      box.textContent = box.textContent ? `${box.textContent}; ${msg}` : msg;
      if (field) {
        field.classList.add("invalid");
        if (!first) {
          first = field;
          const at = / at (\d+)$/.exec(msg);
          position = field instanceof HTMLTextAreaElement && at ? Number(at[1]) : null;
        }
      }
    };
    for (const { loc, msg } of splitErrors(message)) {
      const panel = /^panels\.(\d+)(?:\.(\w+))?$/.exec(loc);
      if (panel) {
        const ed = editors[Number(panel[1])];
        if (!ed) {
          put(undefined, null, `${loc}: ${msg}`);
          continue;
        }
        // a panel-wide check is about its query: "query: <syntax error>" or "a timechart panel needs …"
        const key = panel[2] ?? "query";
        const text = !panel[2] && msg.startsWith("query: ") ? msg.slice(7) : msg;
        if (ed.errors[key] && !(key === "column" && ed.fields.type.value !== "single")) {
          put(ed.errors[key], ed.fields[key], text);
        } else {
          put(ed.general, null, `${key}: ${text}`);
          ed.general.hidden = false;
        }
      } else if (topErrors[loc]) {
        put(topErrors[loc], top[loc], msg);
      } else {
        put(undefined, null, loc ? `${loc}: ${msg}` : msg);
      }
    }
    const f = first as Field | null;
    if (f) {
      f.focus();
      if (position !== null && f instanceof HTMLTextAreaElement) f.setSelectionRange(position, position + 1);
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const spec: DashboardSpec = {
      name: name.value.trim(),
      description: description.value.trim(),
      time_range: timeRange.value.trim() || "1h",
      refresh: refresh.value.trim() && refresh.value.trim() !== "off" ? refresh.value.trim() : null,
      panels: editors.map((ed) => ed.read()),
    };
    if (!spec.name) {
      showErrors("name: a dashboard needs a name");
      return;
    }
    save.disabled = true;
    try {
      await saveDashboard(spec, original);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        showErrors(err.message);
      } else if (err instanceof ApiError && err.status === 409) {
        showErrors(`name: a dashboard named “${spec.name}” exists already; choose another name`);
      } else {
        general.textContent = (err as Error).message;
      }
      return;
    } finally {
      save.disabled = false;
    }
    onSaved(spec.name);
  });
  return form;
}
