// Live tail: records as they arrive, filtered on the server by the same query language, with
// pause/resume, highlighting of the matched words, and a visible notice of dropped records.

import type { Row } from "../api";
import { queryBar } from "../components/querybar";
import { recordItem } from "../components/records";
import { h } from "../dom";
import { addFilter, highlightPattern } from "../querytext";
import { type Page, reflect } from "../router";
import { readEvents } from "../sse";

/** Lines kept on screen; older ones leave from the top. */
const MAX_LINES = 2000;
/** Records held while paused; beyond this the browser drops them (and says so). */
const MAX_PAUSED = 10_000;

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
      const list = h("ol", { class: "records tail", id: "tail-lines" });
      const scroller = h("div", { class: "tail-scroll" }, list);
      root.append(
        h("div", { class: "page tail" },
          bar.el,
          h("div", { class: "tail-controls" }, pauseBtn, stopBtn, clearBtn, status),
          dropped,
          h("section", { class: "card" }, scroller)),
      );

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
        for (const row of rows) frag.append(recordItem(row, onFilter, highlight));
        list.append(frag);
        while (list.childElementCount > MAX_LINES) list.firstElementChild?.remove();
        if (atBottom) scroller.scrollTop = scroller.scrollHeight;
      }

      function marker(n: number) {
        list.append(h("li", { class: "drop-marker" }, `… ${n} record${n === 1 ? "" : "s"} dropped here …`));
      }

      function start() {
        stop();
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
          const data = JSON.parse(ev.data) as Row;
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
        list.replaceChildren();
        droppedServer = droppedBrowser = 0;
        showDropped();
      });
      start();
    },
    unmount() {
      controller?.abort();
      controller = null;
    },
  };
}
