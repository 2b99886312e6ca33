// One dashboard: its panels on a 12-column grid, every panel's query run over the same range
// (the search page's time picker; resolved once per load so all panels describe one window),
// reloaded on the dashboard's refresh period while the range is relative. Edit, export and
// delete act on the stored dashboard.

import { ApiError } from "../api";
import { dashboardForm } from "../components/dashboardform";
import { type PanelView, panelView } from "../components/panel";
import { timePicker } from "../components/timepicker";
import {
  canWrite, dashboardUrl, deleteDashboard, downloadJSON, exportDashboard, exportFileName, getDashboard, readOnly,
  type StoredDashboard,
} from "../dashboards";
import { clear, h } from "../dom";
import { link, navigate, type Page, reflect } from "../router";
import { DEFAULT_RANGE, durationMs, isRelative, resolve, type TimeRange } from "../timerange";

export function dashboardPage(name: string): Page {
  let controller: AbortController | null = null;
  let panels: PanelView[] = [];
  let timer: number | undefined;

  const stopTimer = () => {
    window.clearInterval(timer);
    timer = undefined;
  };

  return {
    async mount(root, url) {
      document.title = `${name} · Dashboards · logharbor`;
      const page = h("div", { class: "page dashboard", id: "dashboard" }, h("p", { class: "hint" }, "Loading…"));
      root.append(page);
      let dash: StoredDashboard;
      let writable = true;
      try {
        [dash, writable] = await Promise.all([getDashboard(name), canWrite()]);
      } catch (err) {
        clear(page);
        const missing = err instanceof ApiError && err.status === 404;
        page.append(h("section", { class: "card", id: "dashboard-missing" },
          h("p", { class: "form-error" }, missing ? `There is no dashboard named “${name}”.` : (err as Error).message),
          link("/ui/dashboards", "← all dashboards")));
        return;
      }
      const preset: TimeRange = { from: `now-${dash.time_range}`, to: "now" };
      let range: TimeRange = {
        from: url.searchParams.get("from") ?? (resolve(preset) ? preset.from : DEFAULT_RANGE.from),
        to: url.searchParams.get("to") ?? "now",
      };
      const picker = timePicker(range, (r) => {
        range = r;
        void load(true);
      });
      const refreshMs = dash.refresh ? durationMs(dash.refresh) : null;
      const auto = h("input", { type: "checkbox", id: "auto-refresh", checked: refreshMs !== null });
      const autoLabel = refreshMs !== null
        ? h("label", { class: "auto-refresh", title: "reload the panels while the range is relative" }, auto,
          ` every ${dash.refresh}`)
        : null;
      auto.addEventListener("change", () => schedule());
      const message = h("p", { class: "form-error", id: "dashboard-error", role: "alert" });
      const grid = h("div", { class: "panel-grid", id: "panels" });
      const editBox = h("div", { id: "dashboard-editor", hidden: true });
      const view = h("div", { class: "dashboard-view" },
        dash.description ? h("p", { class: "hint", id: "dashboard-description" }, dash.description) : null, grid);
      const exportButton = h("button", { type: "button", id: "export-dashboard" }, "Export JSON");
      const editButton = h("button", { type: "button", id: "edit-dashboard" }, "Edit");
      const deleteButton = h("button", { type: "button", id: "delete-dashboard" }, "Delete");
      if (!writable) readOnly([editButton, deleteButton]);
      clear(page);
      page.append(
        h("div", { class: "toolbar" },
          h("h1", null, link("/ui/dashboards", "Dashboards", "crumb"), " / ", h("span", { id: "dashboard-name" }, dash.name)),
          picker.el,
          h("button", { type: "button", id: "refresh", onclick: () => void load(false) }, "Refresh"),
          autoLabel, editButton, exportButton, deleteButton),
        message, editBox, view);

      exportButton.addEventListener("click", async () => {
        message.textContent = "";
        try {
          downloadJSON(await exportDashboard(dash.name), exportFileName(dash.name));
        } catch (err) {
          message.textContent = (err as Error).message;
        }
      });
      deleteButton.addEventListener("click", async () => {
        if (!confirm(`Delete the dashboard “${dash.name}”?`)) return;
        message.textContent = "";
        try {
          await deleteDashboard(dash.name);
        } catch (err) {
          message.textContent = (err as Error).message;
          return;
        }
        navigate("/ui/dashboards");
      });
      editButton.addEventListener("click", () => {
        stopTimer();
        clear(editBox);
        editBox.append(dashboardForm(dash, dash.name, (saved) => {
          navigate(dashboardUrl(saved, range), saved === dash.name);
        }, () => {
          editBox.hidden = true;
          view.hidden = false;
          schedule();
        }));
        editBox.hidden = false;
        view.hidden = true;
        (editBox.querySelector("#dash-name") as HTMLInputElement | null)?.focus();
      });

      panels = dash.panels.map((p, i) => panelView(p, i));
      grid.append(...panels.map((p) => p.el));
      if (!panels.length) {
        grid.append(h("p", { class: "card hint", id: "no-panels" }, "This dashboard has no panels yet: ",
          "use Edit to add some."));
      }

      function schedule() {
        stopTimer();
        // an absolute range shows the same records on every reload: nothing to refresh
        if (autoLabel) autoLabel.hidden = !isRelative(range);
        if (refreshMs !== null && auto.checked && isRelative(range) && view.hidden === false) {
          timer = window.setInterval(() => {
            // not while the tab is hidden, nor under a record someone has opened to read
            if (!document.hidden && !grid.querySelector(".record.open")) void load(false);
          }, Math.max(refreshMs, 5000));
        }
      }

      async function load(push: boolean) {
        controller?.abort();
        controller = new AbortController();
        const signal = controller.signal;
        reflect(dashboardUrl(dash.name, range), push);
        const r = resolve(range);
        message.textContent = "";
        schedule();
        if (!r) {
          message.textContent = "The time range is not valid.";
          return;
        }
        grid.dataset.loading = "true";
        await Promise.all(panels.map((p) => p.load(r, range, signal)));
        if (!signal.aborted) delete grid.dataset.loading;
      }
      await load(false);
    },
    unmount() {
      controller?.abort();
      stopTimer();
      panels.forEach((p) => p.destroy());
    },
  };
}
