// What this browser remembers for its user (localStorage): the time zone every page shows times
// in, the recent queries and the recent time ranges. Never the API key: that lives in the tab's
// sessionStorage only (session.ts). Storage that is full or switched off is not an error.
// Logging out, a 401 and a login with another key forget all of it but the theme (forgetUser,
// claimBrowser): the browser may be shared.

export type TimeZone = "local" | "utc";

const TZ_KEY = "logharbor.timeZone";
/** The light/dark choice (theme.ts; public/theme.js reads it before the first paint). */
export const THEME_KEY = "logharbor.theme";
const RECENT_KEYS = { queries: "logharbor.recentQueries", ranges: "logharbor.recentRanges" } as const;
/** Entries kept per list. */
export const RECENT_MAX = 12;

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // storage full or disabled: the preference lasts as long as the page
  }
}

let zone: TimeZone = read(TZ_KEY) === "utc" ? "utc" : "local";

/** The time zone of every time shown: rows, an opened record, charts, pickers, pages. */
export function timeZone(): TimeZone {
  return zone;
}

export function setTimeZone(tz: TimeZone): void {
  zone = tz;
  write(TZ_KEY, tz === "utc" ? "utc" : null);
}

/** The most recent first. */
export function recent(kind: keyof typeof RECENT_KEYS): string[] {
  try {
    const list = JSON.parse(read(RECENT_KEYS[kind]) ?? "[]");
    return Array.isArray(list) ? list.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}

export function remember(kind: keyof typeof RECENT_KEYS, value: string): void {
  const text = value.trim();
  if (!text) return;
  const list = [text, ...recent(kind).filter((v) => v !== text)].slice(0, RECENT_MAX);
  write(RECENT_KEYS[kind], JSON.stringify(list));
}

export function forget(kind: keyof typeof RECENT_KEYS): void {
  write(RECENT_KEYS[kind], null);
}

/** Of the keys stored in this browser, those logout removes: every one but the theme, which is
 *  about the screen, not the person (recent queries can name users; a key added later is
 *  forgotten too unless it is added here on purpose). */
export function userKeys(stored: Iterable<string>): string[] {
  return [...stored].filter((key) => key !== THEME_KEY);
}

const OWNER_KEY = "logharbor.owner";

/** After a login: what this browser kept belongs to the key that logged in last (its public
 *  prefix). Another key finds nothing of it: a tab closed without logging out leaves the
 *  localStorage behind, and the next person at this browser must not find those queries. */
export function claimBrowser(prefix: string): void {
  if (read(OWNER_KEY) !== prefix) {
    forgetUser();
    write(OWNER_KEY, prefix);
  }
}

/** On logout, and when the server refuses the key (401): the next person at this browser finds
 *  nothing of the last one's queries, ranges or settings. */
export function forgetUser(): void {
  zone = "local";
  try {
    const stored = Array.from({ length: localStorage.length }, (_, i) => localStorage.key(i))
      .filter((key): key is string => key !== null);
    for (const key of userKeys(stored)) localStorage.removeItem(key);
  } catch {
    // storage disabled: nothing was kept
  }
}
