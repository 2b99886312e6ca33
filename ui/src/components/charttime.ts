// Chart times in the chosen time zone (settings.ts): uPlot's axes read dates through `tzDate`.

import uPlot from "uplot";

import { timeZone } from "../settings";
import { formatTime } from "../timerange";

/** uPlot's `tzDate`: a Date whose local fields show the chosen zone. */
export function chartDate(ts: number): Date {
  return timeZone() === "utc" ? uPlot.tzDate(new Date(ts * 1000), "Etc/UTC") : new Date(ts * 1000);
}

/** A chart's legend time (epoch seconds) as the rows show times. */
export function tickTime(seconds: number): string {
  return formatTime(seconds * 1000);
}
