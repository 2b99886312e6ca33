/**
 * Links to the search page: a query, a time range and how to show it, as a /ui/search URL.
 *
 * A module of its own so that components (a dashboard panel) and other pages link to a search
 * without importing the search page itself.
 */
import type { AggView } from "./components/aggchart";
import type { TimeRange } from "./timerange";

export type View = "records" | "patterns";

export interface SearchExtras {
  cols?: string[];
  agg?: AggView;
  open?: boolean;
}

export function searchUrl(q: string, range: TimeRange, view: View = "records", extras: SearchExtras = {}): string {
  const p = new URLSearchParams({ q, from: range.from, to: range.to });
  if (view !== "records") p.set("view", view);
  if (extras.cols?.length) p.set("cols", extras.cols.join(","));
  if (extras.agg === "table") p.set("agg", "table");
  if (extras.open) p.set("open", "1");
  return `/ui/search?${p}`;
}
