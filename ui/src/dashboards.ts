// Dashboards as the API stores them (/api/v1/dashboards): the shapes, the calls, and the JSON
// export a person downloads and imports on another server.

import { getJSON, postJSON, request } from "./api";

export type PanelType = "timechart" | "table" | "single" | "top" | "logs";

export const PANEL_TYPES: { type: PanelType; label: string; hint: string; example: string }[] = [
  { type: "timechart", label: "Time chart", hint: "a query ending in | timechart …",
    example: "* | timechart span=1m count() by level" },
  { type: "table", label: "Table", hint: "a | stats … query (or records with | fields …)",
    example: "* | stats count() as n by service | sort n desc" },
  { type: "single", label: "Single value", hint: "a | stats … query; shows the first column of the first row",
    example: "level:ERROR | stats count() as errors" },
  { type: "top", label: "Top N", hint: "a query ending in | top N field", example: "level:ERROR | top 10 service" },
  { type: "logs", label: "Logs", hint: "a filter (records, newest first)", example: "level:(ERROR OR FATAL)" },
];

export interface PanelSpec {
  title: string;
  type: PanelType;
  query: string;
  column?: string | null;
  unit?: string | null;
  width: number;
}

export interface DashboardSpec {
  name: string;
  description: string;
  time_range: string;
  refresh: string | null;
  panels: PanelSpec[];
}

export interface StoredDashboard extends DashboardSpec {
  created_ns: number;
  updated_ns: number;
}

export interface DashboardExport {
  format: string;
  dashboard: DashboardSpec;
}

const path = (name: string) => `/api/v1/dashboards/${encodeURIComponent(name)}`;

/** May this key write dashboards? (an admin key, or a server without authentication) */
export async function canWrite(): Promise<boolean> {
  try {
    const me = await getJSON<{ role?: string; auth?: string }>("/api/v1/whoami");
    return me.role === "admin" || me.auth === "disabled";
  } catch {
    return true; // let the server say no, with its own message
  }
}

/** Disable the buttons that write, saying why. */
export function readOnly(buttons: HTMLButtonElement[]): void {
  for (const b of buttons) {
    b.disabled = true;
    b.title = "needs an admin key";
  }
}

export async function listDashboards(signal?: AbortSignal): Promise<StoredDashboard[]> {
  return (await getJSON<{ items: StoredDashboard[] }>("/api/v1/dashboards", signal)).items ?? [];
}

export function getDashboard(name: string, signal?: AbortSignal): Promise<StoredDashboard> {
  return getJSON<StoredDashboard>(path(name), signal);
}

/**
 * Store a dashboard: a new one (or a renamed one) is created with POST, so an existing name is
 * refused (409) rather than overwritten; an edit in place replaces it with PUT. A rename deletes
 * the old name once the new one is stored.
 */
export async function saveDashboard(spec: DashboardSpec, original: string | null): Promise<void> {
  if (original !== null && original === spec.name) {
    await request(path(spec.name), {
      method: "PUT",
      body: JSON.stringify(spec),
      headers: { "Content-Type": "application/json" },
    });
    return;
  }
  await postJSON("/api/v1/dashboards", spec);
  if (original !== null) await deleteDashboard(original);
}

export async function deleteDashboard(name: string): Promise<void> {
  await request(path(name), { method: "DELETE" });
}

export function exportDashboard(name: string): Promise<DashboardExport> {
  return getJSON<DashboardExport>(`${path(name)}/export`);
}

export function importDashboard(doc: unknown, overwrite: boolean): Promise<StoredDashboard> {
  return postJSON<StoredDashboard>(`/api/v1/dashboards/import${overwrite ? "?overwrite=true" : ""}`, doc);
}

/** A file name for an export: the dashboard's name in lower case, words joined by dashes. */
export function exportFileName(name: string): string {
  const slug = name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `${slug || "dashboard"}.dashboard.json`;
}

/** Hand a JSON document to the browser as a file download (no server round trip, no new tab). */
export function downloadJSON(doc: unknown, fileName: string): void {
  const blob = new Blob([JSON.stringify(doc, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function dashboardUrl(name: string, range?: { from: string; to: string }): string {
  const base = `/ui/dashboards/${encodeURIComponent(name)}`;
  return range ? `${base}?${new URLSearchParams({ from: range.from, to: range.to })}` : base;
}
