// Marks the buckets of a chart that cover only part of their span (see ../buckets.ts): the area
// is hatched and dimmed on the canvas, so a last bucket that is still filling does not read as a
// drop, and the chart's element says which buckets are marked (for people: a note; for tests:
// data attributes).

import type uPlot from "uplot";

import { type PartialBucket, partialNote } from "../buckets";
import { h } from "../dom";
import { cssColor } from "../theme";

function hatch(ctx: CanvasRenderingContext2D, ink: string): CanvasPattern | string {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  if (!t) return ink;
  t.strokeStyle = ink;
  t.globalAlpha = 0.55;
  t.lineWidth = 1.2;
  t.beginPath();
  t.moveTo(0, 8);
  t.lineTo(8, 0);
  t.moveTo(-2, 2);
  t.lineTo(2, -2);
  t.moveTo(6, 10);
  t.lineTo(10, 6);
  t.stroke();
  return ctx.createPattern(tile, "repeat") ?? ink;
}

/** A uPlot plugin drawing the partial buckets hatched over the plot. `widen` (seconds) extends a
 * region to the left: a line chart's point sits at its bucket's start, and the segment that
 * leads to it is part of what must not read as a drop. */
export function partialMark(parts: () => PartialBucket[], widen = 0): uPlot.Plugin {
  return {
    hooks: {
      draw: [(u: uPlot) => {
        const { ctx, bbox } = u;
        for (const p of parts()) {
          const x1 = Math.min(bbox.left + bbox.width, u.valToPos(p.toS, "x", true));
          // at least 6 device pixels: a phone's last bar is a sliver, its mark must still show
          const x0 = Math.max(bbox.left, Math.min(u.valToPos(p.fromS - widen, "x", true), x1 - 6 * devicePixelRatio));
          if (!(x1 > x0)) continue;
          ctx.save();
          ctx.globalAlpha = 0.5;
          ctx.fillStyle = cssColor("--card");
          ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
          ctx.globalAlpha = 1;
          ctx.fillStyle = hatch(ctx, cssColor("--muted"));
          ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
          ctx.restore();
        }
      }],
    },
  };
}

/** The note under a chart and its data attributes (`data-partial="last"`, the share covered). */
export function partialCaption(el: HTMLElement, parts: PartialBucket[], spanS: number, lastIndex: number):
  HTMLElement | null {
  if (!parts.length) {
    delete el.dataset.partial;
    return null;
  }
  el.dataset.partial = parts.map((p) => (p.index === lastIndex && lastIndex > 0 ? "last" : "first")).join(",");
  el.dataset.partialCovered = parts.map((p) => p.covered.toFixed(3)).join(",");
  return h("p", { class: "partial-note", title: "This bucket holds only the part of its span inside the range " +
    "(the last one is still filling): a lower value there is not a drop." }, partialNote(parts, spanS, lastIndex));
}
