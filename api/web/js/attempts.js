// A best-of-N task's attempts side by side (GET .../attempts): each attempt's status,
// its check's verdict (with the log's tail), its figures, its diff (shown on demand)
// and artifacts, and which one the task kept. The server ranks them with the same code
// the eval harness reports pass@k with; the page only shows what it says.

import { artifactText, listAttempts } from "./api.js";
import { artifactLinks } from "./artifacts.js";
import { renderDiff } from "./diff.js";
import { h, replaceChildren } from "./dom.js";
import { count, statusLabel, statusTone } from "./format.js";

/** Whether `task` makes attempts (its runs are attempts, not follow-ups). */
export function isBestOf(task) {
  return task.attempts > 1 || Boolean(task.check);
}

/** Fills `box` with task `id`'s attempts; `onError(message)` reports a failed read. */
export async function showAttempts(box, id, onError) {
  let list;
  try {
    list = await listAttempts(id);
  } catch (err) {
    onError(`Could not list the attempts: ${err.message}`);
    return;
  }
  // A refresh keeps the diffs already opened open.
  const open = new Set([...box.querySelectorAll("details.attempt-diff[open]")].map((d) => d.dataset.attempt));
  replaceChildren(box,
    h("h2", { id: "attempts-h" }, `Attempts (${list.attempts_asked})`),
    summary(list),
    list.check ? h("p", { class: "muted small" }, "Check: ", h("code", { id: "attempts-check" }, list.check)) : null,
    h("ol", { id: "attempts-list", class: "attempts" },
      list.attempts.map((attempt) => attemptCard(id, list, attempt, open.has(String(attempt.attempt)), onError))));
  box.hidden = false;
}

/** One line: which attempt was kept, how many passed, pass@k over the ended ones. */
function summary(list) {
  const parts = [];
  const ended = list.attempts.filter((a) => typeof a.passed === "boolean").length;
  if (list.chosen) parts.push(`Attempt ${list.chosen} kept`);
  else if (ended === list.attempts_asked) parts.push("No attempt kept");
  if (ended) {
    const what = list.check ? "passed the check" : "completed";
    parts.push(`${list.passed} of ${ended} ${what}`);
    const ks = Object.keys(list.pass_at_k).map(Number).sort((a, b) => a - b);
    const shown = ks.filter((k) => k === 1 || k === ks[ks.length - 1]);
    for (const k of shown) parts.push(`pass@${k} ${percent(list.pass_at_k[String(k)])}`);
  }
  return h("p", { id: "attempts-summary" }, parts.length ? parts.join(" · ") : "No attempt has ended yet.");
}

function attemptCard(id, list, attempt, diffOpen, onError) {
  const n = attempt.attempt;
  const ended = typeof attempt.passed === "boolean";
  const head = h("div", { class: "run-head" },
    h("strong", {}, `Attempt ${n}`),
    h("span", { class: `badge ${statusTone(attempt.status)}`, dataset: { role: "status" } }, attemptStatus(attempt.status)),
    attempt.chosen ? h("span", { class: "badge ok kept" }, "Kept") : null);
  const item = h("li", {
    class: `attempt${attempt.chosen ? " chosen" : ""}`,
    dataset: { attempt: n, status: attempt.status, passed: ended ? String(attempt.passed) : "", chosen: String(attempt.chosen) },
    "aria-label": `Attempt ${n}`,
  }, head, checkBlock(list, attempt), figures(attempt),
  attempt.message ? h("p", { class: "prose muted small attempt-message" }, attempt.message) : null);
  if (ended) {
    item.append(diffBlock(id, n, diffOpen, onError),
      h("details", { class: "run-details" },
        h("summary", {}, "Artifacts"),
        artifactLinks(id, onError, { run: n, runNumber: 1, check: Boolean(list.check) })));
  }
  return item;
}

function attemptStatus(status) {
  if (status === "NOT_RUN") return "Not run";
  return statusLabel(status);
}

/** The check's verdict: passed, failed (exit code, or timed out), not run yet. */
function checkBlock(list, attempt) {
  if (!list.check) return null;
  const check = attempt.check;
  if (!check) {
    const text = typeof attempt.passed === "boolean" ? "Check: did not run" : "Check: not yet";
    return h("p", { class: "check muted small", dataset: { check: "none" } }, text);
  }
  const verdict = check.passed ? "passed"
    : check.timed_out ? "timed out"
    : typeof check.exit_code === "number" ? `failed (exit code ${check.exit_code})` : "failed";
  const line = h("p", { class: `check ${check.passed ? "passed" : "failed"}`, dataset: { check: check.passed ? "passed" : "failed" } },
    `Check ${verdict}`);
  if (!check.log_tail) return line;
  return h("div", {}, line,
    h("details", { class: "check-log" },
      h("summary", {}, "Check output (end)"),
      h("pre", { class: "code" }, check.log_tail)));
}

function figures(attempt) {
  const parts = [];
  if (typeof attempt.files_changed === "number") {
    parts.push(`${attempt.files_changed} ${attempt.files_changed === 1 ? "file" : "files"} changed`);
  }
  if (typeof attempt.total_tokens === "number") parts.push(`${count(attempt.total_tokens)} tokens`);
  const turns = attempt.result?.turns;
  if (typeof turns === "number") parts.push(`${turns} turns`);
  return parts.length ? h("p", { class: "muted small" }, parts.join(" · ")) : null;
}

/** The attempt's own diff, read when opened. */
function diffBlock(id, n, open, onError) {
  const body = h("div", { class: "attempt-diff-body" }, h("p", { class: "muted small" }, "Loading…"));
  const details = h("details", { class: "attempt-diff", dataset: { attempt: n } },
    h("summary", {}, "Diff"), body);
  let loaded = false;
  const load = async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      const patch = await artifactText(id, "diff.patch", undefined, n);
      replaceChildren(body, patch === null || !patch.trim()
        ? h("p", { class: "muted small" }, "This attempt changed nothing.")
        : renderDiff(patch));
    } catch (err) {
      loaded = false;
      replaceChildren(body);
      onError(`Could not read attempt ${n}'s diff: ${err.message}`);
    }
  };
  details.addEventListener("toggle", load);
  if (open) details.open = true;
  return details;
}

function percent(p) {
  return typeof p === "number" ? `${Math.round(p * 100)}%` : "–";
}
