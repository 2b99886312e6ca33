// The app shell: login gate, navigation, the `/` shortcut, and mounting one page at a time.

import "uplot/dist/uPlot.min.css";
import "./style.css";

import { probe, setUnauthorizedHandler } from "./api";
import { clear, h } from "./dom";
import { loginPage } from "./pages/login";
import { searchPage } from "./pages/search";
import { interceptLinks, link, navigate, type Page, setRenderer } from "./router";
import { clearKey, getKey } from "./session";
import { forgetUser } from "./settings";
import { onThemeChange, setTheme, theme } from "./theme";
import { isAdmin, loadWhoami, whoami } from "./whoami";

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
const topbar = nav.closest(".topbar") as HTMLElement;

let current: Page | null = null;
let rendering = 0;
let authDisabled: boolean | null = null;
let alertsAvailable = false;
let dashboardsAvailable = false;

// search is the page people land on and comes with the app; the others load when first opened
const PAGES: { path: string; label: string; page: () => Page | Promise<Page>; show?: () => boolean }[] = [
  { path: "/ui/search", label: "Search", page: searchPage },
  { path: "/ui/tail", label: "Live tail", page: async () => (await import("./pages/tail")).tailPage() },
  { path: "/ui/trace", label: "Traces", page: async () => (await import("./pages/trace")).tracePage() },
  { path: "/ui/services", label: "Services", page: async () => (await import("./pages/services")).servicesPage() },
  { path: "/ui/dashboards", label: "Dashboards", page: async () => (await import("./pages/dashboards")).dashboardsPage(),
    show: () => dashboardsAvailable },
  { path: "/ui/alerts", label: "Alerts", page: async () => (await import("./pages/alerts")).alertsPage(),
    show: () => alertsAvailable },
  // channels, silences, keys, retention, saved queries: admin keys only (a reader sees no entry)
  { path: "/ui/settings", label: "Settings", page: async () => (await import("./pages/settings")).settingsPage(),
    show: () => isAdmin(whoami()) },
];

function loggedIn(): boolean {
  return authDisabled === true || getKey() !== null;
}

// on a phone the pages do not fit in the bar: this button opens them as a menu (style.css hides it
// on wider screens, where the links show in the bar)
const menuButton = h("button", {
  type: "button", class: "nav-toggle", id: "nav-toggle", "aria-controls": "nav", "aria-expanded": "false",
  hidden: true,
});
nav.before(menuButton);

// light or dark, kept per browser (theme.ts); on every page, the login form's included
const themeButton = h("button", {
  type: "button", class: "theme-toggle ghost", id: "theme-toggle", "aria-label": "Dark theme",
  onclick: () => setTheme(theme() === "dark" ? "light" : "dark"),
});
function drawThemeButton(): void {
  const dark = theme() === "dark";
  themeButton.setAttribute("aria-pressed", String(dark));
  themeButton.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
  themeButton.textContent = dark ? "☀" : "☾";
}
drawThemeButton();
onThemeChange(drawThemeButton);
topbar.append(themeButton);

function setMenu(open: boolean): void {
  topbar.classList.toggle("menu-open", open);
  menuButton.setAttribute("aria-expanded", String(open));
}

menuButton.addEventListener("click", () => setMenu(!topbar.classList.contains("menu-open")));
nav.addEventListener("click", (ev) => {
  if ((ev.target as Element).closest("a")) setMenu(false);
});
document.addEventListener("click", (ev) => {
  if (!topbar.contains(ev.target as Node)) setMenu(false);
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && topbar.classList.contains("menu-open")) {
    setMenu(false);
    menuButton.focus();
  }
});

function drawNav(active: string): void {
  clear(nav);
  clear(who);
  setMenu(false);
  menuButton.hidden = !loggedIn();
  if (!loggedIn()) return;
  let here = "Pages";
  for (const p of PAGES) {
    if (p.show && !p.show()) continue;
    const current = active.startsWith(p.path);
    const a = link(p.path, p.label, current ? "active" : "");
    a.dataset.page = p.path.slice(4);
    if (current) {
      a.setAttribute("aria-current", "page");
      here = p.label;
    }
    nav.append(a);
  }
  clear(menuButton);
  menuButton.append(h("span", { class: "nav-toggle-icon", "aria-hidden": "true" }, "☰"), ` ${here}`);
  menuButton.setAttribute("aria-label", `Pages (now: ${here})`);
  if (authDisabled !== true) {
    who.append(
      h("button", {
        type: "button",
        class: "ghost",
        id: "logout",
        onclick: () => {
          clearKey();
          forgetUser(); // recent queries and ranges can name users: not for the next one at this browser
          navigate("/ui/login");
        },
      }, "Log out"),
    );
  }
}

/** Pages whose API may not exist yet are shown once their endpoint answers. */
export async function discover(): Promise<void> {
  [alertsAvailable, dashboardsAvailable] = await Promise.all([
    probe("/api/v1/alerts/rules"), probe("/api/v1/dashboards"), loadWhoami(),
  ]);
}

async function render(): Promise<void> {
  current?.unmount?.();
  current = null;
  const url = new URL(location.href);
  let path = url.pathname.replace(/\/+$/, "");
  if (authDisabled === null) {
    // with auth switched off on the server there is no login; /ui/server.json says so without a
    // key (asking /api/v1/whoami without one left a 401 in the console on every page load)
    const answer = await fetch("/ui/server.json", { credentials: "omit", cache: "no-store" })
      .then((r) => (r.ok ? (r.json() as Promise<{ auth?: boolean }>) : null))
      .catch(() => null);
    authDisabled = answer?.auth === false;
    if (loggedIn()) await discover();
  }
  if (path === "/ui" || path === "") {
    navigate("/ui/search" + url.search, true);
    return;
  }
  if (!loggedIn() && path !== "/ui/login") {
    navigate(`/ui/login?next=${encodeURIComponent(url.pathname + url.search)}`, true);
    return;
  }
  let page: Page;
  if (path === "/ui/login") {
    page = loginPage(async () => {
      await discover();
    });
  } else {
    const entry = PAGES.find((p) => path === p.path || path.startsWith(p.path + "/"));
    if (!entry || (entry.show && !entry.show())) {
      path = "/ui/search";
      navigate(path, true);
      return;
    }
    const mine = ++rendering;
    page = await entry.page();
    if (mine !== rendering) return; // the user went elsewhere while the page loaded
  }
  drawNav(path);
  clear(main);
  current = page;
  await page.mount(main, url);
}

/** `/` focuses the query box from anywhere but a text field. */
function shortcuts(): void {
  document.addEventListener("keydown", (ev) => {
    const target = ev.target as HTMLElement;
    const typing = target.closest("input, textarea, select, [contenteditable]") !== null;
    if (ev.key === "/" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      const box = document.querySelector<HTMLInputElement>("#query, #trace-id");
      if (box) {
        ev.preventDefault();
        box.focus();
        box.select();
      }
    } else if (ev.key === "Escape" && typing) {
      target.blur();
    }
  });
}

setUnauthorizedHandler(() => {
  forgetUser(); // the key is refused: whoever logs in next need not be the one who typed those queries
  const here = location.pathname + location.search;
  if (!location.pathname.startsWith("/ui/login")) {
    navigate(`/ui/login?next=${encodeURIComponent(here)}&expired=1`, true);
  }
});
setRenderer(() => void render());
interceptLinks();
shortcuts();
void render();
