// The login form: checks a key with /api/v1/whoami before keeping it for this browser session.

import { UNREACHABLE } from "../api";
import { h } from "../dom";
import { navigate, type Page, safeNext } from "../router";
import { setKey } from "../session";
import { claimBrowser } from "../settings";

export function loginPage(afterLogin: () => Promise<void>): Page {
  return {
    mount(root, url) {
      const input = h("input", {
        id: "api-key",
        name: "api-key",
        type: "password",
        autocomplete: "off",
        spellcheck: "false",
        placeholder: "lh_…",
        required: true,
        "aria-label": "API key",
      });
      const error = h("p", { class: "form-error", id: "login-error", role: "alert" });
      if (url.searchParams.get("expired")) error.textContent = "Your key was not accepted any more; log in again.";
      const form = h(
        "form",
        { class: "login card", id: "login-form" },
        h("h1", null, "Log in to logharbor"),
        h("label", { for: "api-key" }, "API key"),
        input,
        h("p", { class: "hint" },
          "A reader or admin key. It is kept in this tab's session storage only and sent as an " +
            "Authorization header; it never appears in a URL."),
        h("button", { type: "submit", class: "primary" }, "Log in"),
        error,
      );
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const key = input.value.trim();
        error.textContent = "";
        let answer: Response;
        try {
          answer = await fetch("/api/v1/whoami", {
            headers: { Authorization: `Bearer ${key}` },
            credentials: "omit",
            cache: "no-store",
          });
        } catch {
          error.textContent = UNREACHABLE;
          return;
        }
        if (!answer.ok) {
          error.textContent =
            answer.status === 401 ? "This key is not valid."
            : answer.status === 403 ? "This key may not read logs (a writer key only ingests); use a reader or admin key."
            : `The server answered ${answer.status}.`;
          return;
        }
        const who = (await answer.json().catch(() => null)) as { prefix?: unknown } | null;
        claimBrowser(typeof who?.prefix === "string" ? who.prefix : "");
        setKey(key);
        await afterLogin();
        navigate(safeNext(url.searchParams.get("next")), true);
      });
      root.append(h("div", { class: "login-wrap" }, form));
      input.focus();
    },
  };
}
