// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, and the key
// must never go into the URL, so the stream is read and split into events here.

import { request, Unreachable } from "./api";

export interface SseEvent {
  event: string;
  data: string;
}

/** Read `path` as an event stream until it ends or `signal` aborts; calls `onEvent` per event. */
export async function readEvents(path: string, signal: AbortSignal, onEvent: (e: SseEvent) => void): Promise<void> {
  const response = await request(path, { signal, headers: { Accept: "text/event-stream" } });
  if (!response.body) throw new Error("the browser gave no stream body");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if ((err as Error)?.name === "AbortError" || signal.aborted) throw err;
        throw new Unreachable("The connection to the server was lost; start the tail again when it is back.");
      }
      const { value, done } = chunk;
      if (done) break;
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line === "") {
          if (data.length) onEvent({ event, data: data.join("\n") });
          event = "message";
          data = [];
        } else if (line.startsWith(":")) {
          // a keepalive comment
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}
