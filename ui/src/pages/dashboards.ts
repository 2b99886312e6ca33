// Dashboards: the list (`/ui/dashboards`) with New, Import and per-dashboard Export and Delete;
// one dashboard (`/ui/dashboards/{name}`) is drawn by ./dashboard.ts. Import takes the JSON that
// Export downloads (`{"format": "logharbor.dashboard/v1", "dashboard": {…}}`), from a file or
// pasted, so dashboards can move between servers and live in git.

import { ApiError } from "../api";
import { dashboardForm } from "../components/dashboardform";
import {
  canWrite, dashboardUrl, deleteDashboard, downloadJSON, exportDashboard, exportFileName, importDashboard, listDashboards,
  PANEL_TYPES, readOnly, type StoredDashboard,
} from "../dashboards";
import { clear, h } from "../dom";
import { link, navigate, type Page } from "../router";
import { formatTime } from "../timerange";
import { dashboardPage } from "./dashboard";

const BLANK = {
  name: "", description: "", time_range: "1h", refresh: null,
  panels: [{ title: "Records by level", type: PANEL_TYPES[0].type, query: PANEL_TYPES[0].example, width: 12 }],
};

function importBox(onImported: (name: string) => void): HTMLElement {
  const file = h("input", { type: "file", id: "import-file", accept: "application/json,.json" });
  const text = h("textarea", {
    id: "import-json", rows: "6", spellcheck: "false", class: "mono",
    placeholder: '{"format": "logharbor.dashboard/v1", "dashboard": {…}}', "aria-label": "dashboard JSON",
  });
  const overwrite = h("input", { type: "checkbox", id: "import-overwrite" });
  const error = h("p", { class: "form-error", id: "import-error", role: "alert" });
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (chosen) text.value = await chosen.text();
  });
  const form = h("form", { class: "card import-form", id: "import-form", hidden: true },
    h("h2", null, "Import a dashboard"),
    h("p", { class: "hint" }, "A file saved with Export JSON, or its text pasted below."),
    file, text,
    h("label", { class: "check" }, overwrite, " Replace a dashboard with the same name"),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary", id: "import-submit" }, "Import"),
      h("button", { type: "button", onclick: () => { form.hidden = true; } }, "Cancel")),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    let doc: unknown;
    try {
      doc = JSON.parse(text.value);
    } catch (err) {
      error.textContent = `Not valid JSON: ${(err as Error).message}`;
      return;
    }
    try {
      const stored = await importDashboard(doc, overwrite.checked);
      onImported(stored.name);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 409
        ? `${err.message.replace(/; PUT it to replace it$/, "")}: tick “Replace a dashboard with the same name” to overwrite it.`
        : (err as Error).message;
    }
  });
  return form;
}

function listPage(): Page {
  let controller: AbortController | null = null;
  return {
    async mount(root) {
      document.title = "Dashboards · logharbor";
      const list = h("section", { class: "card", id: "dashboards" }, h("p", { class: "hint" }, "Loading…"));
      const editor = h("div", { id: "dashboard-editor", hidden: true });
      const imports = importBox((name) => navigate(dashboardUrl(name)));
      const message = h("p", { class: "form-error", id: "dashboards-error", role: "alert" });
      const newButton = h("button", { type: "button", class: "primary", id: "new-dashboard" }, "New dashboard");
      const importButton = h("button", { type: "button", id: "import-dashboard" }, "Import");
      root.append(h("div", { class: "page" },
        h("div", { class: "toolbar" }, h("h1", null, "Dashboards"), newButton, importButton),
        imports, editor, message, list));
      newButton.addEventListener("click", () => {
        clear(editor);
        editor.append(dashboardForm(structuredClone(BLANK), null, (name) => navigate(dashboardUrl(name)), () => {
          editor.hidden = true;
          list.hidden = false;
        }));
        editor.hidden = false;
        list.hidden = true;
        (editor.querySelector("#dash-name") as HTMLInputElement | null)?.focus();
      });
      importButton.addEventListener("click", () => {
        imports.hidden = !imports.hidden;
      });
      const writable = await canWrite();
      if (!writable) readOnly([newButton, importButton]);

      async function load() {
        controller?.abort();
        controller = new AbortController();
        let items: StoredDashboard[];
        try {
          items = await listDashboards(controller.signal);
        } catch (err) {
          if ((err as Error).name === "AbortError") return;
          clear(list);
          list.append(h("p", { class: "form-error" }, (err as Error).message));
          return;
        }
        clear(list);
        if (!items.length) {
          list.append(h("p", { class: "hint" }, "No dashboards yet: create one or import one."));
          return;
        }
        const act = (fn: () => Promise<void>) => async () => {
          message.textContent = "";
          try {
            await fn();
          } catch (err) {
            message.textContent = (err as Error).message;
          }
        };
        list.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "dashboard-list" },
          h("thead", null, h("tr", null, ["name", "description", "panels", "range", "updated", ""].map((c) =>
            h("th", { class: c === "panels" ? "num" : "" }, c)))),
          h("tbody", null, items.map((d) => h("tr", { "data-dashboard": d.name },
            h("td", null, link(dashboardUrl(d.name), d.name)),
            h("td", { class: "desc" }, d.description),
            h("td", { class: "num" }, String(d.panels.length)),
            h("td", null, d.time_range),
            h("td", null, formatTime(d.updated_ns / 1e6)),
            h("td", { class: "row-actions" },
              h("button", {
                type: "button", class: "mini", "data-action": "export",
                onclick: act(async () => downloadJSON(await exportDashboard(d.name), exportFileName(d.name))),
              }, "Export"),
              h("button", {
                type: "button", class: "mini", "data-action": "delete", disabled: !writable,
                title: writable ? null : "needs an admin key",
                onclick: act(async () => {
                  if (!confirm(`Delete the dashboard “${d.name}”?`)) return;
                  await deleteDashboard(d.name);
                  await load();
                }),
              }, "Delete"))))))));
      }
      await load();
    },
    unmount() {
      controller?.abort();
    },
  };
}

/** `/ui/dashboards` is the list; `/ui/dashboards/{name}` one dashboard. */
export function dashboardsPage(): Page {
  let inner: Page | null = null;
  return {
    mount(root, url) {
      const rest = url.pathname.replace(/\/+$/, "").slice("/ui/dashboards".length);
      inner = rest.length > 1 ? dashboardPage(decodeURIComponent(rest.slice(1))) : listPage();
      return inner.mount(root, url);
    },
    unmount() {
      inner?.unmount?.();
    },
  };
}
