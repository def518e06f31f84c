// One task: what it is, where it stands (status, phase, elapsed time, tokens), a live
// timeline of what the agent does, cancel while it runs; once finished, the agent's final
// message, the result figures, the diff, the artifacts, the pull request (with a retry
// when it failed), a follow-up box that continues the task as its next run, and the list
// of its runs. A follow-up sent restarts the view on the new run, without a reload. A
// best-of-N task shows its attempts side by side instead (attempts.js), and the view
// restarts on each new attempt as it starts.

import { ApiError, artifactText, cancelTask, getTask } from "./api.js";
import { artifactLinks } from "./artifacts.js";
import { isBestOf, showAttempts } from "./attempts.js";
import { renderDiff } from "./diff.js";
import { focusHeading, h, replaceChildren } from "./dom.js";
import { STATUSES, TERMINAL, count, dateTime, duration, source, statusLabel, statusTone, taskDuration } from "./format.js";
import { follow } from "./live.js";
import { pullRequestBlock, pullRequestPending } from "./pullrequest.js";
import { followUpForm, showRuns } from "./runs.js";
import { Timeline } from "./timeline.js";

const POLL_MS = 5000;
const PR_POLL_MS = 2000;
const PHASES = STATUSES.filter((s) => s !== "PENDING" && !TERMINAL.has(s));

export function showTask(main, id) {
  let view = null;
  const restart = () => {
    if (view) view.stop();
    view = new TaskView(main, id, restart);
    view.start();
  };
  restart();
  return () => view.stop();
}

class TaskView {
  /** `restart()` replaces this view by a fresh one (after a follow-up was sent). */
  constructor(main, id, restart) {
    this.main = main;
    this.id = id;
    this.restart = restart;
    this.task = null;
    this.stats = { turns: null, tokens: null };
    this.timers = [];
    this.unfollow = null;
    this.stopped = false;
    this.finishedShown = false;
  }

  async start() {
    replaceChildren(this.main, h("p", { class: "muted" }, "Loading…"));
    try {
      this.task = await getTask(this.id);
    } catch (err) {
      if (this.stopped) return;
      replaceChildren(this.main,
        h("p", { class: "notice error", role: "alert" },
          err instanceof ApiError && err.status === 404 ? "No such task (or it is not yours)." : `Could not load the task: ${err.message}`),
        h("a", { href: "#/tasks" }, "← All tasks"));
      return;
    }
    if (this.stopped) return;
    this.layout();
    this.update(this.task);
    focusHeading(this.heading);
    // A finished run's list is shown with its result (showFinished).
    if (isBestOf(this.task) && !TERMINAL.has(this.task.status)) this.loadAttempts();
    else if (this.task.run_number > 1 && !TERMINAL.has(this.task.status)) this.loadRuns();
    if (TERMINAL.has(this.task.status)) {
      await this.loadHistory();
      this.showFinished();
    } else {
      this.followLive();
    }
  }

  stop() {
    this.stopped = true;
    for (const timer of this.timers) {
      clearInterval(timer);
      clearTimeout(timer);
    }
    if (this.unfollow) this.unfollow();
  }

  layout() {
    const task = this.task;
    this.heading = h("h1", { class: "task-heading" }, firstLine(task.description));
    this.badge = h("span", { id: "task-status", class: "badge", role: "status" });
    this.phases = h("ol", { class: "phases", "aria-label": "Progress" },
      PHASES.map((s) => h("li", { dataset: { status: s } }, statusLabel(s))));
    this.elapsed = h("dd", { id: "elapsed" });
    this.tokens = h("dd", { id: "tokens" }, "–");
    this.turns = h("dd", { id: "turns" }, "–");
    this.message = h("p", { class: "notice", hidden: true });
    this.liveState = h("span", { class: "live-state muted small", "aria-live": "polite" });
    this.cancelBox = h("div", { class: "cancel-box" });
    this.problem = h("p", { class: "notice error", role: "alert", hidden: true });
    this.resultBox = h("section", { class: "card", id: "result", hidden: true, "aria-labelledby": "result-h" });
    this.diffBox = h("section", { class: "card", id: "diff", hidden: true, "aria-labelledby": "diff-h" });
    this.followUpBox = h("div", { hidden: true });
    this.runsBox = h("section", { class: "card", id: "runs", hidden: true, "aria-labelledby": "runs-h" });
    this.attemptsBox = h("section", { class: "card", id: "attempts", hidden: true, "aria-labelledby": "attempts-h" });
    this.prSlot = h("div", { class: "pr-slot" });
    this.timelineList = h("ol", { id: "timeline", class: "timeline" });
    this.timeline = new Timeline(this.timelineList, (stats) => this.setStats(stats));

    // Kept to be rewritten by `update`: the task's last status (an attempt ending, the
    // task ending with the kept one) changes it without rebuilding the view.
    this.attemptNumber = isBestOf(task) ? h("dd", { id: "attempt-number" }, attemptFact(task)) : null;
    const facts = h("dl", { class: "facts" },
      fact("Elapsed", this.elapsed),
      fact("Tokens", this.tokens),
      fact("Turns", this.turns),
      fact("Code", h("dd", { class: "wrap" }, source(task.input))),
      task.target_file ? fact("Target file", h("dd", { class: "wrap" }, h("code", {}, task.target_file))) : null,
      fact("Model", h("dd", {}, task.model || "server default")),
      fact("Limits", h("dd", {}, limits(task))),
      fact("Created", h("dd", {}, dateTime(task.created_at))),
      isBestOf(task) ? fact("Attempt", this.attemptNumber)
        : task.run_number > 1 ? fact("Run", h("dd", { id: "run-number" }, String(task.run_number))) : null,
      fact("Task id", h("dd", { class: "wrap" }, h("code", {}, task.id)), "wide"));

    replaceChildren(this.main,
      h("nav", { class: "crumbs" }, h("a", { href: "#/tasks" }, "← All tasks")),
      h("section", { class: "card", "aria-labelledby": "task-h" },
        h("div", { class: "task-top" }, this.heading, this.badge),
        descriptionBlock(task.description),
        task.follow_up ? h("div", { class: "follow-up-shown" },
          h("h2", { class: "small-h" }, `Follow-up (run ${task.run_number})`),
          h("p", { id: "task-follow-up", class: "prose" }, task.follow_up)) : null,
        this.phases, facts, this.message, this.problem, this.cancelBox),
      this.resultBox,
      this.attemptsBox,
      this.diffBox,
      this.followUpBox,
      h("section", { class: "card", "aria-labelledby": "timeline-h" },
        h("div", { class: "section-head" },
          h("h2", { id: "timeline-h" }, timelineTitle(task)),
          this.liveState),
        this.timelineList),
      this.runsBox);
    this.heading.id = "task-h";

    this.timers.push(setInterval(() => this.tick(), 1000));
  }

  tick() {
    if (this.task) this.elapsed.textContent = duration(taskDuration(this.task));
  }

  setStats({ turns, tokens }) {
    if (typeof turns === "number") this.turns.textContent = String(turns);
    if (typeof tokens === "number") this.tokens.textContent = count(tokens);
  }

  /** Shows `task`'s status everywhere it appears. */
  update(task) {
    this.task = task;
    this.badge.className = `badge ${statusTone(task.status)}`;
    this.badge.textContent = statusLabel(task.status);
    this.badge.dataset.status = task.status;
    const reached = PHASES.indexOf(task.status);
    const done = TERMINAL.has(task.status);
    for (const [i, li] of [...this.phases.children].entries()) {
      li.className = done ? (task.status === "COMPLETED" ? "done" : "skipped") : i < reached ? "done" : i === reached ? "current" : "";
      if (i === reached && !done) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    this.message.hidden = !task.message;
    this.message.textContent = task.message || "";
    if (this.attemptNumber) this.attemptNumber.textContent = attemptFact(task);
    if (task.result) {
      this.setStats({ turns: task.result.turns, tokens: task.result.usage?.total_tokens });
    }
    this.tick();
    this.renderCancel();
  }

  renderCancel() {
    if (TERMINAL.has(this.task.status)) {
      this.cancelBox.replaceChildren();
      return;
    }
    if (this.cancelBox.dataset.state === "ask") return;
    const ask = h("button", { type: "button", class: "button danger", id: "cancel" }, "Cancel task");
    ask.addEventListener("click", () => this.confirmCancel());
    this.cancelBox.dataset.state = "idle";
    replaceChildren(this.cancelBox, ask);
  }

  confirmCancel() {
    const yes = h("button", { type: "button", class: "button danger", id: "cancel-confirm" }, "Yes, cancel it");
    const no = h("button", { type: "button", class: "button" }, "Keep running");
    this.cancelBox.dataset.state = "ask";
    replaceChildren(this.cancelBox, h("span", {}, "Stop the agent and discard this run? "), yes, " ", no);
    no.addEventListener("click", () => {
      this.cancelBox.dataset.state = "idle";
      this.renderCancel();
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        this.update(await cancelTask(this.id));
      } catch (err) {
        this.showProblem(`Could not cancel: ${err.message}`);
        this.update(await getTask(this.id));
      }
      this.cancelBox.dataset.state = "idle";
      this.renderCancel();
    });
    yes.focus();
  }

  showProblem(message) {
    this.problem.textContent = message;
    this.problem.hidden = false;
  }

  followLive() {
    this.unfollow = follow(this.id, {
      onEvent: (event) => this.onEvent(event),
      onState: (state, message) => {
        this.liveState.textContent = state === "live" ? "● live" : state === "reconnecting" ? "reconnecting…" : `live updates interrupted: ${message || ""}`;
        this.liveState.dataset.state = state;
      },
    });
    // The stream carries every status change; this slow poll only catches what a broken
    // connection would miss.
    this.timers.push(setInterval(() => this.poll(), POLL_MS));
  }

  async poll() {
    if (this.stopped || this.finishedShown) return;
    try {
      const task = await getTask(this.id);
      if (this.stopped) return;
      if (isBestOf(task) && task.run_number !== this.task.run_number) {
        this.restart();
        return;
      }
      this.update(task);
      if (isBestOf(task)) this.loadAttempts();
      if (TERMINAL.has(task.status)) this.finish();
    } catch {
      // The next poll or the stream will tell.
    }
  }

  onEvent(event) {
    this.timeline.add(event);
    if (event.type === "status" && event.status && event.status !== this.task.status) {
      if (isBestOf(this.task) && TERMINAL.has(event.status)) {
        this.attemptEnded();
        return;
      }
      this.update({ ...this.task, status: event.status, message: event.message ?? this.task.message, updated_at: Date.now() });
      if (TERMINAL.has(event.status)) this.finish();
    }
  }

  /** An attempt's stream ended: the task either goes on with the next attempt (the
   * view restarts on it) or has ended with the best one. */
  async attemptEnded() {
    if (this.finishedShown || this.stopped) return;
    let task;
    try {
      task = await getTask(this.id);
    } catch {
      return; // the slow poll tries again
    }
    if (this.stopped) return;
    if (TERMINAL.has(task.status)) {
      this.update(task);
      this.finish();
    } else if (task.run_number !== this.task.run_number) {
      this.restart();
    }
  }

  /** The task ended while watched: stop following, read its final state, show it. */
  async finish() {
    if (this.finishedShown) return;
    this.finishedShown = true;
    if (this.unfollow) this.unfollow();
    this.unfollow = null;
    this.liveState.textContent = "";
    try {
      this.update(await getTask(this.id));
    } catch (err) {
      this.showProblem(`Could not read the final state: ${err.message}`);
    }
    this.showFinished();
  }

  /** A finished task's timeline: its trajectory (all agent events), or the stream's
   * replay when there is none (a run that never started). */
  async loadHistory() {
    try {
      const trajectory = await artifactText(this.id, "trajectory.jsonl");
      if (trajectory !== null) {
        for (const line of trajectory.split("\n")) {
          if (!line.trim()) continue;
          try {
            this.timeline.add(JSON.parse(line));
          } catch {
            // A torn last line of a killed run: skip it.
          }
        }
        this.timeline.add({ type: "status", status: this.task.status, message: this.task.message });
        return;
      }
    } catch (err) {
      this.showProblem(`Could not read the trajectory: ${err.message}`);
    }
    this.followReplay();
  }

  followReplay() {
    this.unfollow = follow(this.id, {
      onEvent: (event) => {
        this.timeline.add(event);
        if (event.type === "status" && TERMINAL.has(event.status) && this.unfollow) this.unfollow();
      },
    });
  }

  async showFinished() {
    this.finishedShown = true;
    const task = this.task;
    const result = task.result || {};
    const blocks = [h("h2", { id: "result-h" }, "Result"), this.prSlot];
    this.showPullRequest();
    if (result.final_message) {
      blocks.push(h("h3", {}, "Final message"), h("p", { id: "final-message", class: "prose final" }, result.final_message));
    }
    if (result.error) blocks.push(h("p", { class: "notice error" }, result.error));
    blocks.push(h("dl", { class: "facts" },
      result.status ? fact("Outcome", h("dd", {}, `${result.status.replace("_", " ")}${result.limit ? ` (${result.limit})` : ""}`)) : null,
      typeof result.turns === "number" ? fact("Turns", h("dd", {}, String(result.turns))) : null,
      result.usage ? fact("Tokens", h("dd", {}, `${count(result.usage.total_tokens)} (${count(result.usage.prompt_tokens)} in, ${count(result.usage.completion_tokens)} out)`)) : null,
      typeof result.duration_ms === "number" ? fact("Run time", h("dd", {}, duration(result.duration_ms))) : null,
      result.timing ? fact("Model / tools", h("dd", {}, `${duration(result.timing.model_ms)} / ${duration(result.timing.tools_ms)}`)) : null,
      typeof result.files_changed === "number" ? fact("Files changed", h("dd", {}, String(result.files_changed))) : null),
    h("h3", {}, "Artifacts"),
    artifactLinks(this.id, (message) => this.showProblem(message),
      { runNumber: isBestOf(task) ? 1 : task.run_number, check: Boolean(task.check) }));
    replaceChildren(this.resultBox, blocks);
    this.resultBox.hidden = false;
    // A best-of-N task's runs are attempts, not a conversation: it takes no follow-up.
    if (isBestOf(task)) {
      this.loadAttempts();
    } else {
      if (task.status === "COMPLETED" || task.status === "FAILED") {
        replaceChildren(this.followUpBox, followUpForm(task, () => this.restart()));
        this.followUpBox.hidden = false;
      }
      if (task.run_number > 1) this.loadRuns();
    }
    await this.loadDiff();
  }

  /** The pull request's state; read again every few seconds while it is being opened. */
  showPullRequest() {
    replaceChildren(this.prSlot, pullRequestBlock(this.task, (task) => {
      this.task = task;
      this.showPullRequest();
    }));
    if (!pullRequestPending(this.task) || this.prPolling) return;
    this.prPolling = true;
    const again = async () => {
      if (this.stopped) return;
      try {
        const task = await getTask(this.id);
        if (this.stopped) return;
        this.task = task;
      } catch {
        // Tried again below.
      }
      if (pullRequestPending(this.task)) {
        this.timers.push(setTimeout(again, PR_POLL_MS));
      } else {
        this.prPolling = false;
        this.showPullRequest();
      }
    };
    this.timers.push(setTimeout(again, PR_POLL_MS));
  }

  loadRuns() {
    return showRuns(this.runsBox, this.id, (message) => this.showProblem(message));
  }

  loadAttempts() {
    return showAttempts(this.attemptsBox, this.id, (message) => this.showProblem(message));
  }

  async loadDiff() {
    let patch;
    try {
      patch = await artifactText(this.id, "diff.patch");
    } catch (err) {
      patch = undefined;
      this.showProblem(`Could not read the diff: ${err.message}`);
    }
    if (this.stopped || patch === undefined) return;
    replaceChildren(this.diffBox,
      h("h2", { id: "diff-h" }, diffTitle(this.task)),
      patch === null ? h("p", { class: "muted" }, "This run produced no diff.") : renderDiff(patch));
    this.diffBox.hidden = false;
  }
}

/** The whole description, unless the heading already shows all of it. */
function descriptionBlock(description) {
  const text = h("p", { id: "task-description", class: "prose" }, description);
  if (description.trim() === firstLine(description)) {
    text.hidden = true; // kept for the record, shown by the heading
    return text;
  }
  return h("details", { class: "description", open: description.length < 600 },
    h("summary", {}, "Task description"), text);
}

function diffTitle(task) {
  if (isBestOf(task)) return task.chosen_attempt ? `Changes (attempt ${task.chosen_attempt}, kept)` : "Changes";
  return task.run_number > 1 ? "Changes (all runs)" : "Changes";
}

function timelineTitle(task) {
  if (isBestOf(task)) {
    const shown = TERMINAL.has(task.status) ? task.chosen_attempt ?? task.run_number : task.run_number;
    return `Timeline of attempt ${shown}`;
  }
  return task.run_number > 1 ? `Timeline of run ${task.run_number}` : "Timeline";
}

/** "2 of 3" while it runs, "2 of 3 kept" once one was chosen. */
function attemptFact(task) {
  if (TERMINAL.has(task.status) && task.chosen_attempt) return `${task.chosen_attempt} of ${task.attempts} kept`;
  return `${task.run_number} of ${task.attempts}`;
}

function fact(term, dd, extra = "") {
  return h("div", { class: `fact ${extra}` }, h("dt", {}, term), dd);
}

function limits(task) {
  const parts = [];
  if (task.max_turns) parts.push(`${task.max_turns} turns`);
  if (task.max_tokens) parts.push(`${count(task.max_tokens)} tokens`);
  if (task.timeout_secs) parts.push(duration(task.timeout_secs * 1000));
  return parts.length ? parts.join(", ") : "server defaults";
}

function firstLine(text) {
  const line = (text || "").split("\n").find((l) => l.trim()) || "(no description)";
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}
