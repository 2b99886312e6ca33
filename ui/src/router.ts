// History-API routing under /ui/: every page has a real URL (shareable, back button works), and
// the server answers any /ui/ path with the same index.html.

export interface Page {
  /** Build the page into `root`; the URL carries its state (query, range, trace id). */
  mount(root: HTMLElement, url: URL): void | Promise<void>;
  /** Stop what the page started (streams, timers, pending requests). */
  unmount?(): void;
}

type Render = () => void;
let render: Render = () => undefined;

export function setRenderer(fn: Render): void {
  render = fn;
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

/** Change the URL to reflect the page's state without re-rendering it. */
export function reflect(path: string, push: boolean): void {
  if (location.pathname + location.search === path) return;
  if (push) history.pushState(null, "", path);
  else history.replaceState(null, "", path);
}

/** Same-origin /ui/ paths only: a `next=` parameter must never send the user elsewhere. */
export function safeNext(next: string | null): string {
  if (next && next.startsWith("/ui/") && !next.startsWith("//")) return next;
  return "/ui/search";
}

export function link(path: string, text: string | Node, cls = ""): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = path;
  a.dataset.link = "";
  if (cls) a.className = cls;
  a.append(text);
  return a;
}

/** Clicks on <a data-link> navigate in place (modifier clicks still open a new tab). */
export function interceptLinks(): void {
  document.addEventListener("click", (ev) => {
    const a = (ev.target as Element | null)?.closest?.("a[data-link]") as HTMLAnchorElement | null;
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    const url = new URL(a.href);
    if (url.origin !== location.origin) return;
    ev.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => render());
}
