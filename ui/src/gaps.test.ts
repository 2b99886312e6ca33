import { describe, expect, it } from "vitest";

import { negativeGapNote } from "./gaps";

const ALB = { name: "the ALB", key: "alb" };
const NGINX = { name: "NGINX", key: "nginx" };
const APP = { name: "the app", key: "app" };

describe("negative gaps", () => {
  it("says nothing of a gap at or above zero, or unknown", () => {
    expect(negativeGapNote(0, ALB, NGINX)).toBeNull();
    expect(negativeGapNote(3.2, ALB, NGINX)).toBeNull();
    expect(negativeGapNote(null, ALB, NGINX)).toBeNull();
  });
  it("calls a gap within the two layers' rounding rounding", () => {
    const note = negativeGapNote(-1.5, ALB, NGINX);
    expect(note?.kind).toBe("rounding");
    expect(note?.text).toContain("up to 2 ms");
    // an app's own duration is exact: NGINX → app rounds by NGINX's millisecond only
    expect(negativeGapNote(-0.8, NGINX, APP)?.kind).toBe("rounding");
    expect(negativeGapNote(-1.2, NGINX, APP)?.kind).toBe("disagree");
  });
  it("names the two clocks and the least they disagree by", () => {
    const note = negativeGapNote(-37, ALB, NGINX);
    expect(note?.kind).toBe("disagree");
    expect(note?.text).toMatch(/^negative: the clocks of the ALB and NGINX disagree by ≥ 37 ms/);
  });
});
