// Surrounding records (Kibana's context view, Grafana's "show context"): the records of the same
// host, service or instance just before and after one record, newest first like the search, the
// record itself marked; more on either side on demand. Three queries: the records at its very
// instant, the newer ones (oldest first, then shown reversed) and the older ones.

import { jsonText, type Row, runQuery } from "../api";
import { clear, h } from "../dom";
import { quoteValue } from "../querytext";
import { iso, nextNanosecond, splitTimestamp } from "../timerange";
import { ensureTabStop, navigableRows, type OnFilter, recordItem } from "./records";

/** Records fetched per side and per "more". */
export const CONTEXT_STEP = 10;
/** How far from the record each side looks. */
const REACH_MS = 24 * 3600_000;
const KEYS = ["host", "service", "instance"] as const;

export function contextDialog(onFilter: OnFilter): { el: HTMLDialogElement; open(record: Row): void } {
  const title = h("h2", { id: "context-title" }, "Surrounding records");
  const choose = h("select", { id: "context-by", "aria-label": "same" });
  const status = h("p", { class: "hint", id: "context-status", role: "status" });
  const newerBtn = h("button", { type: "button", id: "context-newer" }, `${CONTEXT_STEP} newer`);
  const olderBtn = h("button", { type: "button", id: "context-older" }, `${CONTEXT_STEP} older`);
  const list = h("ol", { class: "records context-list", id: "context-list" });
  navigableRows(list);
  const close = h("button", { type: "button", class: "ghost", id: "context-close", "aria-label": "close" }, "✕");
  const el = h("dialog", { class: "flyout", id: "context", "aria-labelledby": "context-title" },
    h("div", { class: "flyout-head" }, title, h("label", { class: "check" }, "same", choose), close),
    newerBtn, list, olderBtn, status) as HTMLDialogElement;
  close.addEventListener("click", () => el.close());

  let anchor: Row = {};
  let newest = "";
  let oldest = "";
  const seen = new Set<string>();
  let controller: AbortController | null = null;

  const base = () => {
    const key = choose.value;
    return `${key}:${quoteValue(anchor[key])}`;
  };
  const item = (row: Row) => {
    const li = recordItem(row, (f, v, n) => {
      el.close();
      onFilter(f, v, n);
    });
    if (jsonText(row) === jsonText(anchor)) {
      li.classList.add("anchor");
      li.dataset.anchor = "1";
    }
    return li;
  };
  /** Rows not shown yet, in the order given. */
  const fresh = (rows: Row[]) => rows.filter((r) => {
    const key = jsonText(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });

  async function newer(signal: AbortSignal) {
    const fromTs = newest;
    const toMs = splitTimestamp(fromTs).ms + REACH_MS;
    const answer = await runQuery(`${base()} | sort by timestamp asc`, fromTs, iso(toMs), CONTEXT_STEP + seen.size,
      signal);
    const rows = fresh(answer.rows).slice(0, CONTEXT_STEP);
    if (rows.length) newest = String(rows[rows.length - 1].timestamp);
    list.prepend(...rows.reverse().map(item));
    return rows.length;
  }

  async function older(signal: AbortSignal) {
    const toTs = nextNanosecond(oldest);
    const fromMs = splitTimestamp(oldest).ms - REACH_MS;
    const answer = await runQuery(base(), iso(fromMs), toTs, CONTEXT_STEP + seen.size, signal);
    const rows = fresh(answer.rows).slice(0, CONTEXT_STEP);
    if (rows.length) oldest = String(rows[rows.length - 1].timestamp);
    list.append(...rows.map(item));
    return rows.length;
  }

  async function load() {
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    clear(list);
    seen.clear();
    const ts = String(anchor.timestamp);
    newest = oldest = ts;
    status.textContent = "Loading…";
    try {
      // the instant itself first (records sharing the timestamp), then each side
      const same = await runQuery(base(), ts, nextNanosecond(ts), 100, signal);
      list.append(...fresh(same.rows).map(item));
      const [n, o] = [await newer(signal), await older(signal)];
      status.textContent = `${list.childElementCount} records of the same ${choose.value}` +
        (n < CONTEXT_STEP ? "; none newer within a day" : "") + (o < CONTEXT_STEP ? "; none older within a day" : "");
      ensureTabStop(list);
      (list.querySelector("li.anchor") as HTMLElement | null)?.scrollIntoView({ block: "center" });
      (list.querySelector("li.anchor .summary") as HTMLElement | null)?.focus();
    } catch (err) {
      if ((err as Error).name !== "AbortError") status.textContent = (err as Error).message;
    }
  }

  const more = (fn: (s: AbortSignal) => Promise<number>, button: HTMLButtonElement) => async () => {
    button.disabled = true;
    try {
      const n = await fn(controller?.signal ?? new AbortController().signal);
      status.textContent = `${list.childElementCount} records of the same ${choose.value}` +
        (n < CONTEXT_STEP ? `; no more ${button === newerBtn ? "newer" : "older"} within a day` : "");
      ensureTabStop(list);
    } catch (err) {
      status.textContent = (err as Error).message;
    } finally {
      button.disabled = false;
    }
  };
  newerBtn.addEventListener("click", more(newer, newerBtn));
  olderBtn.addEventListener("click", more(older, olderBtn));
  choose.addEventListener("change", () => void load());
  el.addEventListener("close", () => controller?.abort());

  return {
    el,
    open(record) {
      anchor = record;
      clear(choose);
      const keys = KEYS.filter((k) => typeof record[k] === "string" && record[k]);
      for (const k of keys) choose.append(h("option", { value: k }, `${k}: ${String(record[k])}`));
      if (!keys.length) return;
      if (!el.open) el.showModal();
      void load();
    },
  };
}
