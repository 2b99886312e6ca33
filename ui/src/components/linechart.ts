// A small time-series line chart (uPlot) that follows its container's width.

import uPlot from "uplot";

import { partialBuckets } from "../buckets";
import { h } from "../dom";
import { axisInk, gridInk, themedChart } from "../theme";
import { chartDate, tickTime } from "./charttime";
import { partialCaption, partialMark } from "./partialmark";

export interface LineSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

export interface LineChart {
  el: HTMLElement;
  destroy(): void;
}

/** `onPick` gets the start (epoch seconds) of the bucket under a click; no title, no caption.
 * With `spanS` (the buckets' length), a bucket the range cuts is hatched and named in a note. */
export function lineChart(title: string, unit: string, x: number[], series: LineSeries[],
  range: [number, number], onPick?: (bucketStart: number) => void, height = 140, spanS?: number): LineChart {
  const box = h("div", { class: "chart" });
  const el = h("figure", { class: "chart-fig" }, title ? h("figcaption", null, title) : null, box);
  const parts = spanS ? partialBuckets(x, spanS, range[0] * 1000, range[1] * 1000) : [];
  const note = spanS ? partialCaption(el, parts, spanS, x.length - 1) : null;
  if (note) el.append(note);
  let plot: uPlot | null = null;
  const fmt = (v: number | null) => (v === null || v === undefined ? "—" : `${+v.toFixed(2)}${unit}`);
  const make = (width: number) => {
    plot?.destroy();
    plot = new uPlot({
      plugins: [themedChart(), partialMark(() => parts, (spanS ?? 0) / 2)],
      width,
      height,
      padding: [6, 8, 0, 0],
      tzDate: chartDate,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => range }, y: { range: (_u, _min, max) => [0, Math.max(max, 1e-9) * 1.1] } },
      axes: [
        { stroke: axisInk, grid: { show: false }, ticks: { size: 3, stroke: gridInk }, space: 70 },
        { stroke: axisInk, size: 50, grid: { stroke: gridInk }, ticks: { show: false },
          values: (_u, vals) => vals.map((v) => `${+v.toFixed(2)}`) },
      ],
      series: [
        { value: (_u, v) => (v === null ? "" : tickTime(v)) },
        ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: false, points: { show: false },
          value: (_u: uPlot, v: number | null) => fmt(v) })),
      ],
    }, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, box);
    if (onPick) {
      const chart = plot;
      chart.over.classList.add("pickable");
      chart.over.title = "click: the records of this interval";
      chart.over.addEventListener("click", () => {
        const idx = chart.cursor.idx;
        if (idx !== null && idx !== undefined) onPick(x[idx]);
      });
    }
  };
  // draw once the figure is in the page and has a width
  const resize = new ResizeObserver(() => {
    const width = box.clientWidth;
    if (width <= 0) return;
    if (!plot) make(width);
    else if (Math.abs(plot.width - width) > 1) plot.setSize({ width, height });
  });
  resize.observe(box);
  return {
    el,
    destroy() {
      resize.disconnect();
      plot?.destroy();
    },
  };
}
