// Links to a task's artifacts. The API hands them out to the token's bearer (a redirect
// to a short-lived signed URL), and a plain link cannot send the token, so each link
// fetches its file with the token and saves it from memory.

import { artifactBlob } from "./api.js";
import { h } from "./dom.js";

export const ARTIFACTS = [
  ["diff.patch", "The diff, for git apply"],
  ["step.patch", "This run's own changes"],
  ["trajectory.jsonl", "Every event of the run"],
  ["result.json", "How the run ended"],
  ["agent.log", "The agent's log"],
  ["check.log", "The check's output"],
];

/**
 * The artifacts of task `taskId`'s run `run` (the current run's when absent); `step.patch`
 * only for a follow-up run (`runNumber` > 1), where `diff.patch` covers every run so far;
 * `check.log` only when the task has a check (`check`).
 */
export function artifactLinks(taskId, onError, { run = null, runNumber = 1, check = false } = {}) {
  const names = ARTIFACTS.filter(([name]) =>
    (name !== "step.patch" || runNumber > 1) && (name !== "check.log" || check));
  return h("ul", { class: "artifacts" }, names.map(([name, what]) => {
    const label = name === "diff.patch" && runNumber > 1 ? "The diff of all runs so far, for git apply" : what;
    const link = h("a", { href: "#", class: "artifact", dataset: { artifact: name, run: run ?? "" } }, name);
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      link.setAttribute("aria-busy", "true");
      try {
        const blob = await artifactBlob(taskId, name, run);
        const url = URL.createObjectURL(blob);
        const file = run ? `${taskId}-run${run}-${name}` : `${taskId}-${name}`;
        const save = h("a", { href: url, download: file, hidden: true });
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (err) {
        onError(`${name}: ${err.message}`);
      } finally {
        link.removeAttribute("aria-busy");
      }
    });
    return h("li", {}, link, h("span", { class: "muted small" }, ` ${label}`));
  }));
}
