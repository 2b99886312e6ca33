import { describe, expect, it } from "vitest";

import { ApiError } from "./api";
import { fieldErrors, messageErrors } from "./fielderrors";

describe("fieldErrors", () => {
  it("takes the server's detail.fields", () => {
    const err = new ApiError(400, "invalid_rule", "window: x; for: y", null,
      { fields: [{ field: "window", message: "x" }, { field: "for", message: "y" }, { field: null, message: "z" }] });
    expect(fieldErrors(err)).toEqual([{ field: "window", message: "x" }, { field: "for", message: "y" },
      { field: null, message: "z" }]);
  });
  it("splits an older server's one-line message by the field names opening its parts", () => {
    expect(messageErrors("window: '5 parsecs' is not a duration; interval must be at least 10s; boom")).toEqual([
      { field: "window", message: "'5 parsecs' is not a duration" },
      { field: "interval", message: "interval must be at least 10s" },
      { field: null, message: "boom" },
    ]);
    expect(fieldErrors(new ApiError(400, "invalid_rule", "query: bad"))).toEqual([{ field: "query", message: "bad" }]);
  });
  it("keeps a failure that is not the server's as one message", () => {
    expect(fieldErrors(new Error("offline"))).toEqual([{ field: null, message: "offline" }]);
  });
});
