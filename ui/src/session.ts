// The API key lives in sessionStorage only: it never goes into a URL, a cookie or localStorage,
// so it is gone when the tab closes and is never sent anywhere but our own API calls.

const KEY = "logharbor.apiKey";

export function getKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(KEY);
}
