// Time picker: relative presets and an absolute from/to (local time), in one dropdown.

import { h } from "../dom";
import { describe, iso, PRESETS, resolve, type TimeRange, toInputValue } from "../timerange";

export interface TimePicker {
  el: HTMLElement;
  set(range: TimeRange): void;
}

export function timePicker(initial: TimeRange, onChange: (r: TimeRange) => void): TimePicker {
  let range = initial;
  const label = h("span", { class: "tp-label" });
  const button = h("button", { type: "button", class: "tp-button", id: "time-button", "aria-haspopup": "true" },
    label);
  const fromInput = h("input", { type: "datetime-local", step: "1", id: "time-from", "aria-label": "from" });
  const toInput = h("input", { type: "datetime-local", step: "1", id: "time-to", "aria-label": "to" });
  const err = h("p", { class: "form-error" });
  const presets = h("div", { class: "tp-presets" },
    PRESETS.map((p) =>
      h("button", {
        type: "button",
        class: "link",
        "data-from": p.from,
        onclick: () => choose({ from: p.from, to: "now" }),
      }, p.label)),
  );
  const absolute = h("form", { class: "tp-absolute" },
    h("label", null, "From", fromInput),
    h("label", null, "To", toInput),
    h("button", { type: "submit", class: "primary", id: "time-apply" }, "Apply"),
    err,
  );
  absolute.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = Date.parse(fromInput.value);
    const to = Date.parse(toInput.value);
    if (Number.isNaN(from) || Number.isNaN(to) || to <= from) {
      err.textContent = "Give a start before the end.";
      return;
    }
    choose({ from: iso(from), to: iso(to) });
  });
  const panel = h("div", { class: "tp-panel", hidden: true },
    h("div", null, h("h3", null, "Relative"), presets),
    h("div", null, h("h3", null, "Absolute"), absolute),
  );
  const el = h("div", { class: "timepicker" }, button, panel);

  function sync() {
    label.textContent = describe(range);
    const r = resolve(range);
    if (r) {
      fromInput.value = toInputValue(r.fromMs);
      toInput.value = toInputValue(r.toMs);
    }
  }
  function choose(r: TimeRange) {
    range = r;
    panel.hidden = true;
    err.textContent = "";
    sync();
    onChange(r);
  }
  button.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) sync();
  });
  const outside = (ev: MouseEvent) => {
    if (!el.isConnected) document.removeEventListener("click", outside);
    else if (!el.contains(ev.target as Node)) panel.hidden = true;
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
