// Following the API's event streams live with the browser's own EventSource: one task's
// events (`follow`) and the owner's task list (`followUpdates`).
//
// EventSource cannot send an Authorization header, and the token must never go in a
// URL. So the page asks the API for a ticket (POST .../ticket, with the token in the
// header): it opens this one stream only, for a minute, and is worth nothing else.
// EventSource's own reconnects reuse it (and send Last-Event-ID); once it has expired, a
// closed stream gets a fresh ticket and resumes after the last event seen
// (`last_event_id`), so no event is shown twice or lost. The updates stream has no ids:
// each (re)connection starts with a fresh snapshot instead.

import { eventTicket, updatesTicket } from "./api.js";

const MAX_BACKOFF_MS = 15000;

/**
 * Follows task `id`. `onEvent(data)` gets each event's JSON once, in order;
 * `onState("live" | "reconnecting" | "error", message?)` the connection's state.
 * Returns a function that stops following.
 */
export function follow(id, handlers) {
  return stream(() => eventTicket(id), (query) => `/api/v1/tasks/${encodeURIComponent(id)}/events?${query}`, handlers);
}

/**
 * Follows the signed-in owner's tasks: `onEvent` gets `{type: "snapshot", tasks}` on each
 * (re)connection, then `{type: "task", task}` for each new or changed task.
 */
export function followUpdates(handlers) {
  return stream(updatesTicket, (query) => `/api/v1/tasks/updates?${query}`, handlers);
}

function stream(getTicket, urlOf, { onEvent, onState = () => {} }) {
  let source = null;
  let lastId = null;
  let stopped = false;
  let failures = 0;
  let retry = null;

  async function open() {
    if (stopped) return;
    let ticket;
    try {
      ticket = await getTicket();
    } catch (err) {
      return retryLater(err.message);
    }
    if (stopped) return;
    const query = new URLSearchParams({ ticket: ticket.ticket });
    if (lastId !== null) query.set("last_event_id", String(lastId));
    source = new EventSource(urlOf(query));
    source.onopen = () => {
      failures = 0;
      onState("live");
    };
    source.onmessage = (message) => {
      if (message.lastEventId !== "") {
        const seq = Number(message.lastEventId);
        if (lastId !== null && seq <= lastId) return;
        lastId = seq;
      }
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return; // not an event of ours
      }
      onEvent(data);
    };
    source.onerror = () => {
      if (stopped) return;
      if (source && source.readyState === EventSource.CLOSED) {
        // Refused (the ticket expired, the server restarted): start over with a new one.
        source = null;
        retryLater("The live connection was refused.");
      } else {
        onState("reconnecting");
      }
    };
  }

  function retryLater(message) {
    failures += 1;
    onState(failures > 2 ? "error" : "reconnecting", message);
    const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures);
    retry = setTimeout(open, wait);
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(retry);
    if (source) source.close();
    source = null;
  };
}
