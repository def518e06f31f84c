// Links to a task's artifacts. The API hands them out to the token's bearer (a redirect
// to a short-lived signed URL), and a plain link cannot send the token, so each link
// fetches its file with the token and saves it from memory.

import { artifactBlob } from "./api.js";
import { h } from "./dom.js";

export const ARTIFACTS = [
  ["diff.patch", "The diff, for git apply"],
  ["trajectory.jsonl", "Every event of the run"],
  ["result.json", "How the run ended"],
  ["agent.log", "The agent's log"],
];

export function artifactLinks(taskId, onError) {
  return h("ul", { class: "artifacts" }, ARTIFACTS.map(([name, what]) => {
    const link = h("a", { href: "#", class: "artifact", dataset: { artifact: name } }, name);
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      link.setAttribute("aria-busy", "true");
      try {
        const blob = await artifactBlob(taskId, name);
        const url = URL.createObjectURL(blob);
        const save = h("a", { href: url, download: `${taskId}-${name}`, hidden: true });
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
    return h("li", {}, link, h("span", { class: "muted small" }, ` ${what}`));
  }));
}
