// A finished task's pull request: its link once open, where it stands while it opens,
// and, when opening failed, why (`pr_error`) with a retry (POST .../pull-request; a new
// token may be given if the old one was refused, and is never shown again).

import { ApiError, retryPullRequest } from "./api.js";
import { h, replaceChildren, safeLink } from "./dom.js";

/** Whether the pull request is still being opened (the page reads the task again). */
export function pullRequestPending(task) {
  const state = task.pull_request?.state;
  return !task.pr_url && (state === "REQUESTED" || state === "OPENING");
}

/**
 * The pull request block of `task` (null when it has none); `onRetried(task)` gets the
 * task as the retry left it.
 */
export function pullRequestBlock(task, onRetried) {
  const pr = task.pull_request;
  if (task.pr_url) {
    return h("p", { id: "pull-request", class: "pr" }, "Pull request: ", safeLink(task.pr_url, task.pr_url, { id: "pr-link" }));
  }
  if (!pr) return null;
  if (pullRequestPending(task)) {
    return h("p", { id: "pull-request", class: "pr muted", role: "status" }, "Pull request: opening…");
  }
  if (pr.state === "SKIPPED") {
    return h("p", { id: "pull-request", class: "pr muted" }, `No pull request: ${pr.error || "nothing to propose"}`);
  }
  if (pr.state !== "FAILED") return null;
  return retryForm(task, onRetried);
}

function retryForm(task, onRetried) {
  const token = h("input", {
    type: "password", id: "pr-token", name: "github_token", autocomplete: "off",
    "aria-describedby": "pr-token-help",
  });
  const error = h("p", { id: "pr-retry-error", class: "field-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", id: "pr-retry", class: "button" }, "Retry pull request");
  const form = h("form", { id: "pull-request", class: "pr-form", novalidate: true },
    h("p", { id: "pr-error", class: "notice error" },
      h("strong", {}, "The pull request could not be opened: "), task.pr_error || "unknown error"),
    h("div", { class: "field" },
      h("label", { for: "pr-token" }, "GitHub token (optional)"),
      token,
      h("p", { id: "pr-token-help", class: "help" },
        "Only if the token given before was refused. It is kept encrypted until the pull request is open.")),
    error,
    h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      const again = await retryPullRequest(task.id, token.value.trim() || undefined);
      token.value = "";
      onRetried(again);
    } catch (err) {
      replaceChildren(error, err instanceof ApiError ? err.message : String(err));
      error.hidden = false;
      button.disabled = false;
    }
  });
  return form;
}
