// Live tail: records as they arrive, filtered on the server by the same query language, with
// pause/resume, highlighting of the matched words, and a visible notice of dropped records. A new
// filter starts from an empty screen; level toggles and a find box narrow what the screen holds
// without touching the stream.

import { parseExact, type Row } from "../api";
import { queryBar } from "../components/querybar";
import { ensureTabStop, navigableRows, recordItem } from "../components/records";
import { h } from "../dom";
import { addFilter, highlightPattern } from "../querytext";
import { type Page, reflect } from "../router";
import { readEvents } from "../sse";

/** Lines kept on screen; older ones leave from the top. */
const MAX_LINES = 2000;
/** Records held while paused; beyond this the browser drops them (and says so). */
const MAX_PAUSED = 10_000;
const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

export function tailPage(): Page {
  let controller: AbortController | null = null;
  return {
    mount(root, url) {
      let q = url.searchParams.get("q") ?? "*";
      document.title = "Live tail · logharbor";
      let paused = false;
      let held: Row[] = [];
      let droppedServer = 0;
      let droppedBrowser = 0;
      let received = 0;
      let highlight = highlightPattern(q);

      const bar = queryBar(q, (text) => {
        q = text;
        start();
      }, "Tail");
      const status = h("span", { class: "tail-status", id: "tail-status" }, "stopped");
      const pauseBtn = h("button", { type: "button", id: "pause", disabled: true }, "Pause");
      const stopBtn = h("button", { type: "button", id: "stop", disabled: true }, "Stop");
      const clearBtn = h("button", { type: "button", class: "ghost", id: "clear" }, "Clear");
      const dropped = h("div", { class: "dropped-notice", id: "dropped", role: "status", hidden: true });
      const list = h("ol", { class: "records tail", id: "tail-lines", "aria-label": "live records" });
      navigableRows(list);
      const scroller = h("div", { class: "tail-scroll" }, list);
      // what the screen shows of what it holds: levels switched off, and a find box
      const hiddenLevels = new Set<string>();
      const levelCounts = new Map<string, number>();
      const levelButtons = LEVELS.map((level) => h("button", {
        type: "button", class: "mini level-toggle", "data-level": level, "aria-pressed": "true",
        title: `show or hide ${level} records`,
        onclick: (ev: Event) => {
          if (hiddenLevels.has(level)) hiddenLevels.delete(level);
          else hiddenLevels.add(level);
          (ev.currentTarget as HTMLElement).setAttribute("aria-pressed", String(!hiddenLevels.has(level)));
          refilter();
        },
      }, level));
      const find = h("input", { type: "text", class: "tail-filter", id: "tail-find", placeholder: "Find in these lines",
        "aria-label": "find in the lines on screen", autocomplete: "off", spellcheck: "false" });
      const shownNote = h("span", { class: "hint", id: "tail-shown" });
      find.addEventListener("input", () => refilter());
      root.append(
        h("div", { class: "page tail" },
          bar.el,
          h("div", { class: "tail-controls" }, pauseBtn, stopBtn, clearBtn, status),
          h("div", { class: "tail-controls" }, h("span", { class: "tail-levels", role: "group", "aria-label": "levels" },
            levelButtons), find, shownNote),
          dropped,
          h("section", { class: "card" }, scroller)),
      );

      function visible(li: Element): boolean {
        if (!li.classList.contains("record")) return hiddenLevels.size === 0 && !find.value.trim();
        const level = (li as HTMLElement).dataset.level?.toUpperCase() ?? "";
        if (hiddenLevels.has(level)) return false;
        const needle = find.value.trim().toLowerCase();
        return !needle || (li.textContent ?? "").toLowerCase().includes(needle);
      }

      function describeShown() {
        const total = list.querySelectorAll(":scope > li.record").length;
        const shown = list.querySelectorAll(":scope > li.record:not(.filtered-out)").length;
        shownNote.textContent = shown === total ? "" : `${shown} of ${total} lines shown`;
        for (const b of levelButtons) {
          const n = levelCounts.get(b.dataset.level ?? "") ?? 0;
          b.textContent = n ? `${b.dataset.level} ${n}` : String(b.dataset.level);
        }
      }

      function refilter() {
        for (const li of list.children) li.classList.toggle("filtered-out", !visible(li));
        describeShown();
      }

      /** A new filter: the previous filter's lines, counts and drop notices go. */
      function reset() {
        list.replaceChildren();
        delete list.dataset.subscribed;
        received = 0;
        held = [];
        droppedServer = droppedBrowser = 0;
        levelCounts.clear();
        showDropped();
        describeShown();
      }

      const onFilter = (field: string, value: unknown, negate: boolean) => {
        q = addFilter(bar.value(), field, value, negate);
        bar.set(q);
        start();
      };

      function showDropped() {
        const total = droppedServer + droppedBrowser;
        dropped.hidden = total === 0;
        dropped.dataset.count = String(total);
        dropped.textContent =
          `Dropped ${total} record${total === 1 ? "" : "s"}: ` +
          [droppedServer ? `${droppedServer} by the server (this tab did not read fast enough)` : "",
            droppedBrowser ? `${droppedBrowser} while paused (over ${MAX_PAUSED} held)` : ""]
            .filter(Boolean).join(", ");
      }

      function setStatus() {
        if (!controller) status.textContent = "stopped";
        else if (paused) status.textContent = `paused — ${held.length} new record${held.length === 1 ? "" : "s"} held`;
        else status.textContent = `streaming — ${received} received`;
        status.dataset.state = !controller ? "stopped" : paused ? "paused" : "streaming";
      }

      function show(rows: Row[]) {
        const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
        const frag = document.createDocumentFragment();
        for (const row of rows) {
          const li = recordItem(row, onFilter, highlight);
          const level = String(row.level ?? "").toUpperCase();
          levelCounts.set(level, (levelCounts.get(level) ?? 0) + 1);
          if (!visible(li)) li.classList.add("filtered-out");
          frag.append(li);
        }
        list.append(frag);
        while (list.childElementCount > MAX_LINES) {
          const first = list.firstElementChild as HTMLElement | null;
          const level = first?.dataset.level?.toUpperCase();
          if (level) levelCounts.set(level, Math.max(0, (levelCounts.get(level) ?? 1) - 1));
          first?.remove();
        }
        ensureTabStop(list);
        describeShown();
        if (atBottom) scroller.scrollTop = scroller.scrollHeight;
      }

      function marker(n: number) {
        list.append(h("li", { class: "drop-marker" }, `… ${n} record${n === 1 ? "" : "s"} dropped here …`));
      }

      let running = "";
      function start() {
        stop();
        if (q !== running) reset();
        running = q;
        bar.clearError();
        reflect(`/ui/tail?${new URLSearchParams({ q })}`, true);
        highlight = highlightPattern(q);
        controller = new AbortController();
        const mine = controller;
        paused = false;
        held = [];
        pauseBtn.disabled = false;
        stopBtn.disabled = false;
        pauseBtn.textContent = "Pause";
        status.textContent = "connecting…";
        let batch: Row[] = [];
        let scheduled = false;
        const flush = () => {
          scheduled = false;
          if (batch.length) show(batch);
          batch = [];
        };
        readEvents(`/api/v1/tail?${new URLSearchParams({ q })}`, mine.signal, (ev) => {
          if (ev.event === "subscribed") {
            setStatus();
            list.dataset.subscribed = "1";
            return;
          }
          const data = parseExact(ev.data) as Row; // an integer beyond 2^53 stays exact
          if (ev.event === "dropped" || (typeof data.dropped === "number" && Object.keys(data).length === 1)) {
            droppedServer += Number(data.dropped);
            showDropped();
            if (!paused) marker(Number(data.dropped));
            return;
          }
          received++;
          if (paused) {
            if (held.length < MAX_PAUSED) held.push(data);
            else {
              droppedBrowser++;
              showDropped();
            }
          } else {
            // one DOM update per frame however fast records come
            batch.push(data);
            // a background tab gets no animation frames: keep only what the screen would keep
            if (batch.length > MAX_LINES) batch.splice(0, batch.length - MAX_LINES);
            if (!scheduled) {
              scheduled = true;
              requestAnimationFrame(flush);
            }
          }
          setStatus();
        }).then(() => {
          if (controller === mine) {
            controller = null;
            status.textContent = "the server ended the stream";
            pauseBtn.disabled = true;
            stopBtn.disabled = true;
          }
        }, (err: Error) => {
          if (err.name === "AbortError") return;
          if (controller === mine) controller = null;
          bar.showError(err, q);
          setStatus();
          pauseBtn.disabled = true;
          stopBtn.disabled = true;
        });
      }

      function stop() {
        controller?.abort();
        controller = null;
        if (held.length) show(held);
        held = [];
        pauseBtn.disabled = true;
        stopBtn.disabled = true;
        setStatus();
      }

      pauseBtn.addEventListener("click", () => {
        paused = !paused;
        pauseBtn.textContent = paused ? "Resume" : "Pause";
        if (!paused && held.length) {
          show(held);
          held = [];
        }
        setStatus();
      });
      stopBtn.addEventListener("click", stop);
      clearBtn.addEventListener("click", () => {
        const subscribed = list.dataset.subscribed;
        reset();
        if (subscribed) list.dataset.subscribed = subscribed;
        setStatus();
      });
      start();
    },
    unmount() {
      controller?.abort();
      controller = null;
    },
  };
}
