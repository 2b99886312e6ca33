// Light or dark: the system's prefers-color-scheme unless this browser chose with the toggle
// (localStorage). public/theme.js applies a stored choice before the first paint; this module
// flips it, and tells the charts (uPlot draws on a canvas, so CSS alone does not reach its axes).

import type uPlot from "uplot";

import { THEME_KEY } from "./settings";

export type Theme = "light" | "dark";

export { THEME_KEY };
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");
const charts = new Set<uPlot>();

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(THEME_KEY);
    return v === "dark" || v === "light" ? v : null;
  } catch {
    return null;
  }
}

/** The theme shown now. */
export function theme(): Theme {
  return stored() ?? (systemDark.matches ? "dark" : "light");
}

/** Show `next`; a choice equal to the system's is not stored, so the page follows the system again. */
export function setTheme(next: Theme): void {
  const system: Theme = systemDark.matches ? "dark" : "light";
  try {
    if (next === system) localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, next);
  } catch {
    // storage full or switched off: the choice lasts as long as the page
  }
  document.documentElement.dataset.theme = next;
  changed();
}

const listeners = new Set<() => void>();

/** `fn` runs whenever the theme shown changes (the toggle, or the system's setting). */
export function onThemeChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(): void {
  resolved.clear();
  for (const u of charts) u.redraw(false, false);
  for (const fn of listeners) fn();
}

systemDark.addEventListener("change", () => {
  if (stored() === null) {
    delete document.documentElement.dataset.theme;
    changed();
  }
});

// the stylesheet's variables hold light-dark(...), which a canvas cannot read: resolve each one
// through an element's computed colour
const resolved = new Map<string, string>();
export function cssColor(variable: string): string {
  let color = resolved.get(variable);
  if (color === undefined) {
    const probe = document.createElement("span");
    probe.style.color = `var(${variable})`;
    probe.hidden = true;
    document.body.append(probe);
    color = getComputedStyle(probe).color;
    probe.remove();
    resolved.set(variable, color);
  }
  return color;
}

/** uPlot axis and grid colours, read at every draw so they follow the theme. */
export const axisInk = (): string => cssColor("--muted");
export const gridInk = (): string => cssColor("--chart-grid");

/** A uPlot plugin that redraws the chart when the theme changes. */
export function themedChart(): uPlot.Plugin {
  return {
    hooks: {
      init: [(u: uPlot) => void charts.add(u)],
      destroy: [(u: uPlot) => void charts.delete(u)],
    },
  };
}
