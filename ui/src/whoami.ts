// The key's role and scope, asked once per login (GET /api/v1/whoami): the app shows the settings
// pages to admin keys only, and the pages adapt to a scoped admin (docs/security.md).

import { getJSON } from "./api";

/** `GET /api/v1/whoami`: the key's role and scope (`{"auth": "disabled"}` on a server without auth). */
export interface Whoami {
  auth?: string;
  prefix?: string;
  role?: string;
  name?: string;
  tenant?: string | null;
  services?: string[] | null;
}

/** Admin pages are for admin keys (and for everybody on a server with auth switched off). */
export function isAdmin(who: Whoami | null): boolean {
  return who !== null && (who.auth === "disabled" || who.role === "admin");
}

/** A key bound to a tenant or services: retention (one policy for the server) is not for it. */
export function isScoped(who: Whoami | null): boolean {
  return who !== null && who.auth !== "disabled" && (!!who.tenant || !!who.services?.length);
}

let current: Whoami | null = null;

/** Ask the server who this key is; null when it does not answer (the admin pages stay hidden). */
export async function loadWhoami(): Promise<Whoami | null> {
  try {
    current = await getJSON<Whoami>("/api/v1/whoami");
  } catch {
    current = null;
  }
  return current;
}

/** What the last `loadWhoami` learnt. */
export function whoami(): Whoami | null {
  return current;
}
