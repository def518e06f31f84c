// A task's runs: the follow-up box that continues a finished task (POST .../messages, a
// new run starting where the last one left the code and the conversation), and the list
// of its runs in order, each with its instruction, outcome, figures, artifacts and its
// own timeline (read from that run's trajectory when opened).

import { ApiError, artifactText, listRuns, sendFollowUp } from "./api.js";
import { artifactLinks } from "./artifacts.js";
import { h, replaceChildren } from "./dom.js";
import { count, dateTime, duration, statusLabel, statusTone } from "./format.js";
import { Timeline } from "./timeline.js";

/** The follow-up form of a finished task; `onSent(task)` gets the task as queued again. */
export function followUpForm(task, onSent) {
  const message = h("textarea", {
    id: "follow-up-message", name: "message", rows: 3, required: true,
    "aria-describedby": "follow-up-help",
  });
  const error = h("p", { id: "follow-up-message-error", class: "field-error", role: "alert", hidden: true });
  const formError = h("p", { id: "follow-up-error", class: "notice error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "button primary", id: "follow-up-send" }, "Send follow-up");
  const form = h("form", { id: "follow-up", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "follow-up-message" }, "Follow-up"),
      message,
      h("p", { id: "follow-up-help", class: "help" },
        `What the agent should do next. It continues from the code and the conversation run ${task.run_number} left.`),
      error),
    formError,
    h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    formError.hidden = true;
    message.removeAttribute("aria-invalid");
    if (!message.value.trim()) {
      return showError("Say what the agent should do next.", true);
    }
    button.disabled = true;
    try {
      const queued = await sendFollowUp(task.id, message.value);
      onSent(queued);
    } catch (err) {
      button.disabled = false;
      const text = err instanceof ApiError ? err.message : String(err);
      showError(text, err instanceof ApiError && err.field === "message");
    }
  });
  // Ctrl+Enter (or Cmd+Enter) sends from the text box.
  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  function showError(text, onField) {
    if (onField) {
      error.textContent = text;
      error.hidden = false;
      message.setAttribute("aria-invalid", "true");
      message.focus();
    } else {
      formError.textContent = text;
      formError.hidden = false;
    }
  }
  return h("section", { class: "card", "aria-labelledby": "follow-up-h" },
    h("h2", { id: "follow-up-h" }, "Continue this task"), form);
}

/** Fills `box` with the runs of task `id`, oldest first. */
export async function showRuns(box, id, onError) {
  let runs;
  try {
    runs = (await listRuns(id)).runs;
  } catch (err) {
    onError(`Could not list the runs: ${err.message}`);
    return;
  }
  replaceChildren(box,
    h("h2", { id: "runs-h" }, `Runs (${runs.length})`),
    h("ol", { id: "runs-list", class: "runs" }, runs.map((run) => runItem(id, run, onError))));
  box.hidden = false;
}

function runItem(id, run, onError) {
  const result = run.result || {};
  const figures = [];
  if (typeof result.turns === "number") figures.push(`${result.turns} turns`);
  if (result.usage) figures.push(`${count(result.usage.total_tokens)} tokens`);
  if (typeof result.duration_ms === "number") figures.push(duration(result.duration_ms));
  if (typeof result.files_changed === "number") figures.push(`${result.files_changed} files changed`);
  const head = h("div", { class: "run-head" },
    h("strong", {}, `Run ${run.run_number}`),
    h("span", { class: `badge ${statusTone(run.status)}` }, statusLabel(run.status)),
    run.current ? h("span", { class: "muted small" }, "(shown above)") : null,
    run.finished_at ? h("span", { class: "muted small" }, dateTime(run.finished_at)) : null);
  const item = h("li", { class: "run", dataset: { run: run.run_number, status: run.status } },
    head,
    h("p", { class: "prose run-instruction" }, run.instruction),
    run.message ? h("p", { class: "prose muted small" }, run.message) : null,
    figures.length ? h("p", { class: "muted small" }, figures.join(" · ")) : null);
  if (!run.current) {
    const timeline = h("ol", { class: "timeline" });
    const details = h("details", { class: "run-details" },
      h("summary", {}, "Timeline and artifacts"),
      artifactLinks(id, onError, { run: run.run_number, runNumber: run.run_number }),
      timeline);
    let loaded = false;
    details.addEventListener("toggle", async () => {
      if (!details.open || loaded) return;
      loaded = true;
      await fillTimeline(new Timeline(timeline), id, run, onError);
    });
    item.append(details);
  }
  return item;
}

async function fillTimeline(timeline, id, run, onError) {
  try {
    const trajectory = await artifactText(id, "trajectory.jsonl", undefined, run.run_number);
    if (trajectory === null) {
      timeline.add({ type: "status", status: run.status, message: run.message || "This run left no trajectory." });
      return;
    }
    for (const line of trajectory.split("\n")) {
      if (!line.trim()) continue;
      try {
        timeline.add(JSON.parse(line));
      } catch {
        // A torn last line of a killed run: skip it.
      }
    }
  } catch (err) {
    onError(`Could not read run ${run.run_number}'s trajectory: ${err.message}`);
  }
}
