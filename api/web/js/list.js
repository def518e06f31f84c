// The caller's tasks, newest first, filtered by status, refreshed every few seconds
// while the tab is visible (the API lists only the signed-in owner's tasks).

import { ApiError, listTasks } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { STATUSES, age, duration, source, statusLabel, statusTone, taskDuration } from "./format.js";

const REFRESH_MS = 3000;

export function showList(main, params) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  let cursor = null;
  let extra = []; // tasks from "Show more" pages, kept across refreshes
  let timer = null;
  let stopped = false;

  const filter = h("select", { id: "status-filter", name: "status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, statusLabel(s))));
  filter.addEventListener("change", () => {
    location.hash = filter.value ? `#/tasks?status=${filter.value}` : "#/tasks";
  });

  const list = h("ul", { id: "task-list", class: "task-list", "aria-live": "polite", "aria-busy": "true" });
  const more = h("button", { type: "button", class: "button", hidden: true }, "Show more");
  const problem = h("p", { class: "notice error", role: "alert", hidden: true });
  const updated = h("span", { class: "muted small" });

  main.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Tasks"),
      h("div", { class: "filters" },
        h("label", { for: "status-filter" }, "Status"), filter, updated)),
    problem, list, h("div", { class: "actions center" }, more));

  async function refresh() {
    try {
      const page = await listTasks({ status });
      if (stopped) return;
      if (cursor === null) cursor = page.next_cursor || null;
      const seen = new Set(page.tasks.map((t) => t.id));
      render(page.tasks.concat(extra.filter((t) => !seen.has(t.id))));
      problem.hidden = true;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (stopped || !(err instanceof ApiError)) return;
      problem.textContent = `Could not load tasks: ${err.message}`;
      problem.hidden = false;
    } finally {
      list.setAttribute("aria-busy", "false");
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(() => (document.hidden ? schedule() : refresh()), REFRESH_MS);
  }

  function render(tasks) {
    more.hidden = !cursor;
    if (tasks.length === 0) {
      replaceChildren(list, h("li", { class: "empty" },
        status ? `No ${statusLabel(status).toLowerCase()} tasks.` : "No tasks yet. ",
        status ? null : h("a", { href: "#/new" }, "Submit the first one.")));
      return;
    }
    replaceChildren(list, tasks.map(row));
  }

  more.addEventListener("click", async () => {
    if (!cursor) return;
    more.disabled = true;
    try {
      const page = await listTasks({ status, cursor });
      extra = extra.concat(page.tasks);
      cursor = page.next_cursor || null;
      await refresh();
    } catch (err) {
      problem.textContent = `Could not load more tasks: ${err.message}`;
      problem.hidden = false;
    } finally {
      more.disabled = false;
    }
  });

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function row(task) {
  const now = Date.now();
  return h("li", { class: "task-row", dataset: { id: task.id, status: task.status } },
    h("span", { class: `badge ${statusTone(task.status)}` }, statusLabel(task.status)),
    h("a", { class: "task-title", href: `#/tasks/${encodeURIComponent(task.id)}` }, firstLine(task.description)),
    h("span", { class: "task-source muted" }, source(task.input)),
    h("span", { class: "task-times muted" },
      h("time", { datetime: new Date(task.created_at).toISOString(), title: new Date(task.created_at).toLocaleString() },
        age(task.created_at, now)),
      " · ", duration(taskDuration(task, now))));
}

function firstLine(text) {
  const line = (text || "").split("\n").find((l) => l.trim()) || "(no description)";
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}
