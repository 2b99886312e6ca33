import { describe, expect, it } from "vitest";

import { THEME_KEY, userKeys } from "./settings";

describe("what logout forgets", () => {
  it("is every stored key but the theme: recent queries and ranges name users and services", () => {
    const stored = ["logharbor.recentQueries", "logharbor.recentRanges", "logharbor.timeZone", THEME_KEY,
      "logharbor.somethingAddedLater"];
    expect(userKeys(stored)).toEqual(["logharbor.recentQueries", "logharbor.recentRanges", "logharbor.timeZone",
      "logharbor.somethingAddedLater"]);
    expect(userKeys([THEME_KEY])).toEqual([]);
    expect(THEME_KEY).toBe("logharbor.theme"); // public/theme.js reads this name before the first paint
  });
});
