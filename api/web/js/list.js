// The caller's tasks, newest first, filtered by status, kept current live: the API's
// updates stream (GET /api/v1/tasks/updates) sends a snapshot of the newest tasks, then
// each new or changed task; a reconnection's snapshot also re-reads the list, for what
// happened while it was away. No polling. Rows are updated in place, so a row that has
// the keyboard focus keeps it; a task's `updated_at` orders its versions, so an answer
// that arrives late never overwrites a newer one.

import { ApiError, listTasks } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { STATUSES, TERMINAL, age, duration, source, statusLabel, statusTone, taskDuration } from "./format.js";
import { followUpdates } from "./live.js";

const TICK_MS = 1000;

export function showList(main, params) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const rows = new Map(); // task id -> Row, in the list
  const latest = new Map(); // task id -> the newest updated_at seen, shown or not
  let cursor = null;
  let stopped = false;
  let loading = null;

  const filter = h("select", { id: "status-filter", name: "status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, statusLabel(s))));
  filter.addEventListener("change", () => {
    location.hash = filter.value ? `#/tasks?status=${filter.value}` : "#/tasks";
  });

  const list = h("ul", { id: "task-list", class: "task-list", "aria-live": "polite", "aria-busy": "true" });
  const empty = h("li", { class: "empty" },
    status ? `No ${statusLabel(status).toLowerCase()} tasks.` : "No tasks yet. ",
    status ? null : h("a", { href: "#/new" }, "Submit the first one."));
  const more = h("button", { type: "button", class: "button", hidden: true }, "Show more");
  const problem = h("p", { class: "notice error", role: "alert", hidden: true });
  const liveState = h("span", { id: "list-live", class: "live-state muted small" });

  main.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Tasks"),
      h("div", { class: "filters" },
        h("label", { for: "status-filter" }, "Status"), filter, liveState)),
    problem, list, h("div", { class: "actions center" }, more));

  const wanted = (task) => !status || task.status === status;

  /** Puts `task` in its place, updates its row, or takes it out if it left the filter. */
  function upsert(task) {
    if (task.updated_at < (latest.get(task.id) ?? -Infinity)) return; // older news
    latest.set(task.id, task.updated_at);
    const row = rows.get(task.id);
    if (!wanted(task)) {
      if (row) {
        row.li.remove();
        rows.delete(task.id);
      }
    } else if (row) {
      row.update(task);
    } else {
      const added = new Row(task);
      rows.set(task.id, added);
      // Newest first: before the first row created earlier.
      const next = [...list.children].find((li) => rows.get(li.dataset.id)?.task.created_at < task.created_at);
      list.insertBefore(added.li, next || null);
    }
    showEmpty();
  }

  function showEmpty() {
    if (rows.size === 0 && !empty.isConnected) list.append(empty);
    if (rows.size > 0) empty.remove();
  }

  /** The first page again (on each connection of the stream, so nothing is missed). */
  async function reload() {
    if (loading) return loading;
    loading = (async () => {
      try {
        const page = await listTasks({ status });
        if (stopped) return;
        const firstPage = new Set(page.tasks.map((t) => t.id));
        // Rows beyond the first page stay only if "Show more" brought them.
        for (const [id, row] of rows) {
          if (!firstPage.has(id) && !row.extra) {
            row.li.remove();
            rows.delete(id);
          }
        }
        // With "Show more" pages shown, the cursor already points past them.
        if (![...rows.values()].some((row) => row.extra)) cursor = page.next_cursor || null;
        for (const task of page.tasks) upsert(task);
        showEmpty();
        more.hidden = !cursor;
        problem.hidden = true;
      } catch (err) {
        if (stopped || !(err instanceof ApiError)) return;
        problem.textContent = `Could not load tasks: ${err.message}`;
        problem.hidden = false;
      } finally {
        list.setAttribute("aria-busy", "false");
        loading = null;
      }
    })();
    return loading;
  }

  more.addEventListener("click", async () => {
    if (!cursor) return;
    more.disabled = true;
    try {
      const page = await listTasks({ status, cursor });
      for (const task of page.tasks) {
        upsert(task);
        const row = rows.get(task.id);
        if (row) row.extra = true;
      }
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
    } catch (err) {
      problem.textContent = `Could not load more tasks: ${err.message}`;
      problem.hidden = false;
    } finally {
      more.disabled = false;
    }
  });

  let snapshots = 0;
  const unfollow = followUpdates({
    onEvent: (event) => {
      if (event.type === "snapshot") {
        snapshots += 1;
        if (snapshots > 1) reload();
        for (const task of event.tasks || []) upsert(task);
        showEmpty();
      } else if (event.type === "task" && event.task) upsert(event.task);
      else if (event.type === "degraded") setLive("degraded", "updates every few seconds");
      else if (event.type === "live_restored") setLive("live");
    },
    onState: (state, message) => setLive(state, message),
  });

  function setLive(state, message) {
    liveState.dataset.state = state;
    liveState.textContent = state === "live" ? "● live"
      : state === "reconnecting" ? "reconnecting…"
      : state === "degraded" ? `● ${message}`
      : `live updates interrupted${message ? `: ${message}` : ""}`;
  }

  // Ages and running durations move on without the server.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const row of rows.values()) row.times(now);
  }, TICK_MS);

  reload();
  return () => {
    stopped = true;
    clearInterval(ticker);
    unfollow();
  };
}

/** One task's row; its link element stays the same across updates. */
class Row {
  constructor(task) {
    this.extra = false;
    this.badge = h("span", { class: "badge" });
    this.link = h("a", { class: "task-title", href: `#/tasks/${encodeURIComponent(task.id)}` });
    this.source = h("span", { class: "task-source muted" });
    this.age = h("time", {});
    this.duration = h("span", { class: "task-duration", title: "Duration" });
    this.li = h("li", { class: "task-row", dataset: { id: task.id } },
      this.badge, this.link, this.source,
      h("span", { class: "task-times muted" }, this.age, " · ", this.duration));
    this.update(task);
  }

  update(task) {
    this.task = task;
    this.li.dataset.status = task.status;
    this.badge.className = `badge ${statusTone(task.status)}`;
    this.badge.textContent = statusLabel(task.status);
    this.link.textContent = firstLine(task.description);
    this.source.textContent = source(task.input);
    this.source.title = source(task.input);
    const created = new Date(task.created_at);
    this.age.setAttribute("datetime", created.toISOString());
    this.age.title = created.toLocaleString();
    this.times(Date.now());
  }

  times(now) {
    const task = this.task;
    this.age.textContent = age(task.created_at, now);
    const ran = duration(taskDuration(task, now));
    this.duration.textContent = TERMINAL.has(task.status) ? `took ${ran}`
      : task.status === "PENDING" || task.status === "QUEUED" ? `waiting ${ran}` : `running ${ran}`;
  }
}

function firstLine(text) {
  const line = (text || "").split("\n").find((l) => l.trim()) || "(no description)";
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}
