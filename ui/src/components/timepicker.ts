// Time picker: a typed from/to (`now-3h`, `15m`, `2026-11-01 12:00`, RFC 3339), relative presets,
// the ranges used recently, and the time zone every page shows times in; beside it, buttons that
// shift the range half its length earlier or later and zoom out to twice its length.

import { h } from "../dom";
import { navigate } from "../router";
import { recent, remember, setTimeZone, timeZone } from "../settings";
import {
  describe, formatTime, isRelative, normalizeInstant, PRESETS, resolve, shift, type TimeRange, zoomOut,
} from "../timerange";

export interface TimePicker {
  el: HTMLElement;
  set(range: TimeRange): void;
}

/** How a bound shows in its text box: relative as written, absolute in the chosen time zone. */
function boundText(text: string, ms: number): string {
  return text.startsWith("now") ? text : formatTime(ms, ms % 1000 !== 0);
}

function encodeRange(r: TimeRange): string {
  return `${r.from} ${r.to}`;
}

function decodeRange(text: string): TimeRange | null {
  const [from, to] = text.split(" ");
  return from && to ? { from, to } : null;
}

export function timePicker(initial: TimeRange, onChange: (r: TimeRange) => void): TimePicker {
  let range = initial;
  const label = h("span", { class: "tp-label" });
  const button = h("button", {
    type: "button", class: "tp-button", id: "time-button", "aria-haspopup": "dialog", "aria-expanded": "false",
  }, label);
  const fromInput = h("input", { type: "text", id: "time-from", "aria-label": "from", autocomplete: "off",
    spellcheck: "false", placeholder: "now-3h, 15m, 2026-11-01 12:00" });
  const toInput = h("input", { type: "text", id: "time-to", "aria-label": "to", autocomplete: "off",
    spellcheck: "false", placeholder: "now" });
  const err = h("p", { class: "form-error", id: "time-error", role: "alert" });
  const zoneHint = h("p", { class: "hint", id: "time-zone-hint" });
  const presets = h("div", { class: "tp-presets" },
    PRESETS.map((p) =>
      h("button", {
        type: "button",
        class: "link",
        "data-from": p.from,
        onclick: () => choose({ from: p.from, to: "now" }),
      }, p.label)),
  );
  const recentBox = h("div", { class: "tp-presets tp-recent", id: "time-recent" });
  const absolute = h("form", { class: "tp-absolute" },
    h("label", null, "From", fromInput),
    h("label", null, "To", toInput),
    zoneHint,
    h("button", { type: "submit", class: "primary", id: "time-apply" }, "Apply"),
    err,
  );
  absolute.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = normalizeInstant(fromInput.value);
    const to = normalizeInstant(toInput.value || "now");
    if (from === null || to === null) {
      err.textContent = `Not a time: ${from === null ? fromInput.value : toInput.value}. ` +
        "Write now-3h, 15m, 2026-11-01 12:00 or an RFC 3339 time.";
      return;
    }
    if (!resolve({ from, to })) {
      err.textContent = "Give a start before the end.";
      return;
    }
    choose({ from, to });
  });
  const zoneChoice = (tz: "local" | "utc", text: string) => {
    const input = h("input", { type: "radio", name: "tp-zone", value: tz, id: `time-zone-${tz}` });
    input.checked = timeZone() === tz;
    input.addEventListener("change", () => {
      setTimeZone(tz);
      // every time on the page is drawn again in the new zone
      navigate(location.pathname + location.search, true);
    });
    return h("label", { class: "check" }, input, text);
  };
  const panel = h("div", { class: "tp-panel", role: "dialog", "aria-label": "time range", hidden: true },
    h("div", null, h("h3", null, "Range"), absolute,
      h("h3", { class: "tp-zone-title" }, "Time zone"),
      h("div", { class: "tp-zone" }, zoneChoice("local", "Local"), zoneChoice("utc", "UTC"))),
    h("div", null, h("h3", null, "Relative"), presets),
    h("div", null, h("h3", null, "Recent"), recentBox),
  );
  const step = (title: string, id: string, text: string, fn: () => TimeRange) =>
    h("button", { type: "button", class: "tp-step", id, title, "aria-label": title,
      onclick: () => choose(fn(), false) }, text);
  const el = h("div", { class: "timepicker" },
    step("half the range earlier", "time-back", "◀", () => shift(range, -1)),
    step("zoom out: twice the range", "time-zoom-out", "−", () => zoomOut(range)),
    step("half the range later", "time-forward", "▶", () => shift(range, 1)),
    button, panel);

  function showRecent() {
    recentBox.replaceChildren();
    const ranges = recent("ranges").map(decodeRange).filter((r): r is TimeRange => r !== null);
    if (!ranges.length) recentBox.append(h("p", { class: "hint" }, "None yet."));
    for (const r of ranges) {
      recentBox.append(h("button", { type: "button", class: "link", "data-range": encodeRange(r),
        onclick: () => choose(r) }, describe(r)));
    }
  }

  function sync() {
    label.textContent = describe(range);
    button.title = isRelative(range) ? "" : `${range.from} → ${range.to}`;
    const r = resolve(range);
    if (r) {
      fromInput.value = boundText(range.from, r.fromMs);
      toInput.value = boundText(range.to, r.toMs);
    }
    zoneHint.textContent = timeZone() === "utc" ? "Dates and times in UTC." : "Dates and times in local time.";
  }
  function open(show: boolean) {
    panel.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
    if (show) {
      sync();
      showRecent();
    }
  }
  function choose(r: TimeRange, keep = true) {
    range = r;
    open(false);
    err.textContent = "";
    if (keep) remember("ranges", encodeRange(r));
    sync();
    onChange(r);
  }
  button.addEventListener("click", () => open(panel.hidden));
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.stopPropagation();
      open(false);
      button.focus();
    }
  });
  const outside = (ev: MouseEvent) => {
    if (!el.isConnected) document.removeEventListener("click", outside);
    else if (!el.contains(ev.target as Node)) open(false);
  };
  document.addEventListener("click", outside);
  sync();
  return {
    el,
    set(r) {
      range = r;
      sync();
    },
  };
}
