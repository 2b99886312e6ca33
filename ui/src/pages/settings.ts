// Settings: what only the API could do before — alert channels, silences, API keys, retention and
// storage, saved queries — one tab each under /ui/settings/<tab>. The app shows the page (and its
// nav entry) to admin keys only (main.ts asks whoami); each tab's writes go to the API, which
// decides: a scoped admin sees its own scope's objects and the server's refusal of anything wider.

import "./settings.css";
import { isScoped, whoami } from "../whoami";
import { clear, h } from "../dom";
import { link, navigate, type Page } from "../router";
import { stacked } from "./settings/form";

/** What a tab gets: where to draw, the URL (its parameters), and a signal that ends with the page. */
export interface TabContext {
  root: HTMLElement;
  url: URL;
  signal: AbortSignal;
}

type Tab = { id: string; label: string; load: () => Promise<(ctx: TabContext) => Promise<void>> };

export const TABS: Tab[] = [
  { id: "channels", label: "Channels", load: async () => (await import("./settings/channels")).channelsTab },
  { id: "silences", label: "Silences", load: async () => (await import("./settings/silences")).silencesTab },
  { id: "keys", label: "API keys", load: async () => (await import("./settings/keys")).keysTab },
  { id: "retention", label: "Retention & storage", load: async () => (await import("./settings/retention")).retentionTab },
  { id: "saved", label: "Saved queries", load: async () => (await import("./settings/saved")).savedTab },
];

export function settingsPage(): Page {
  let controller: AbortController | null = null;
  return {
    async mount(root, url) {
      const id = url.pathname.replace(/\/+$/, "").split("/")[3] ?? "";
      const tab = TABS.find((t) => t.id === id);
      if (!tab) {
        navigate("/ui/settings/channels", true);
        return;
      }
      document.title = `${tab.label} · Settings · logharbor`;
      controller = new AbortController();
      const who = whoami();
      const tabs = h("nav", { class: "tabs settings-tabs", "aria-label": "Settings" },
        TABS.map((t) => {
          const a = link(`/ui/settings/${t.id}`, t.label, t.id === tab.id ? "tab active" : "tab");
          a.dataset.tab = t.id;
          if (t.id === tab.id) a.setAttribute("aria-current", "page");
          return a;
        }));
      const body = h("div", { class: "settings-body", id: `settings-${tab.id}` }, h("p", { class: "hint" }, "Loading…"));
      root.append(h("div", { class: "page settings" },
        h("div", { class: "toolbar" }, h("h1", null, "Settings"),
          isScoped(who) ? h("span", { class: "hint", id: "settings-scope" },
            `This key administers ${who?.tenant ? `tenant ${who.tenant}` : ""}${who?.tenant && who?.services?.length ? ", " : ""}` +
            `${who?.services?.length ? `services ${who.services.join(", ")}` : ""} only.`) : null),
        tabs, body));
      // every table a tab draws (and redraws) folds into cards on a phone (style.css)
      const observer = new MutationObserver(() => {
        for (const t of body.querySelectorAll<HTMLTableElement>("table.grid:not(.stack)")) stacked(t);
      });
      observer.observe(body, { childList: true, subtree: true });
      controller.signal.addEventListener("abort", () => observer.disconnect());
      const draw = await tab.load();
      if (controller.signal.aborted) return;
      clear(body);
      await draw({ root: body, url, signal: controller.signal });
    },
    unmount() {
      controller?.abort();
    },
  };
}
