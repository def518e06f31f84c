// A unified diff (git's format, as in diff.patch) parsed and shown per file: added and
// removed lines coloured, old and new line numbers, each file collapsible. Lines are
// text nodes, so a diff holding markup shows the markup.

import { h } from "./dom.js";

const MAX_RENDERED_LINES = 20000;

/** Parses `patch` into files: paths, change kind, binary flag, hunks with numbered lines. */
export function parseDiff(patch) {
  const files = [];
  let file = null;
  let hunk = null;
  let oldLine = 0;
  let newLine = 0;
  const startFile = (oldPath, newPath) => {
    file = { oldPath, newPath, kind: "modified", binary: false, hunks: [], added: 0, removed: 0 };
    files.push(file);
    hunk = null;
  };
  for (const line of patch.split("\n")) {
    if (line.startsWith("diff --git ")) {
      const match = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      startFile(match ? match[1] : line.slice(11), match ? match[2] : line.slice(11));
      continue;
    }
    if (!hunk && line.startsWith("--- ")) {
      if (!file) startFile(null, null);
      file.oldPath = stripPrefix(line.slice(4)) ?? file.oldPath;
      if (line.slice(4).trim() === "/dev/null") file.kind = "added";
      continue;
    }
    if (!hunk && line.startsWith("+++ ") && file) {
      file.newPath = stripPrefix(line.slice(4)) ?? file.newPath;
      if (line.slice(4).trim() === "/dev/null") file.kind = "deleted";
      continue;
    }
    if (!file) continue;
    if (line.startsWith("@@")) {
      const match = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(line);
      oldLine = match ? Number(match[1]) : 0;
      newLine = match ? Number(match[2]) : 0;
      hunk = { header: line, lines: [] };
      file.hunks.push(hunk);
      continue;
    }
    if (!hunk) {
      if (line.startsWith("new file mode")) file.kind = "added";
      else if (line.startsWith("deleted file mode")) file.kind = "deleted";
      else if (line.startsWith("rename from")) file.kind = "renamed";
      else if (line.startsWith("Binary files") || line === "GIT binary patch") file.binary = true;
      continue;
    }
    if (line.startsWith("+")) {
      hunk.lines.push({ kind: "add", old: null, new: newLine++, text: line.slice(1) });
      file.added += 1;
    } else if (line.startsWith("-")) {
      hunk.lines.push({ kind: "del", old: oldLine++, new: null, text: line.slice(1) });
      file.removed += 1;
    } else if (line.startsWith(" ")) {
      hunk.lines.push({ kind: "ctx", old: oldLine++, new: newLine++, text: line.slice(1) });
    } else if (line.startsWith("\\")) {
      hunk.lines.push({ kind: "note", old: null, new: null, text: line });
    } else if (line.startsWith("diff ")) {
      hunk = null;
    }
  }
  return files;
}

function stripPrefix(path) {
  const trimmed = path.replace(/\t.*$/, "").trim();
  if (trimmed === "/dev/null") return null;
  return trimmed.replace(/^[ab]\//, "");
}

/** The rendered diff: a summary line and one collapsible section per file. */
export function renderDiff(patch) {
  const files = parseDiff(patch);
  if (files.length === 0) return h("p", { class: "muted" }, "The agent changed no files.");
  const added = files.reduce((n, f) => n + f.added, 0);
  const removed = files.reduce((n, f) => n + f.removed, 0);
  let budget = MAX_RENDERED_LINES;
  return h("div", { class: "diff" },
    h("p", { class: "diff-summary" },
      `${files.length} ${files.length === 1 ? "file" : "files"} changed, `,
      h("span", { class: "added" }, `+${added}`), " ",
      h("span", { class: "removed" }, `−${removed}`)),
    files.map((file) => {
      const lines = file.hunks.reduce((n, hk) => n + hk.lines.length, 0);
      const fits = lines <= budget;
      budget -= fits ? lines : 0;
      return renderFile(file, fits);
    }));
}

function renderFile(file, fits) {
  const path = file.kind === "deleted" ? file.oldPath : file.newPath;
  const title = file.kind === "renamed" ? `${file.oldPath} → ${file.newPath}` : path;
  let body;
  if (file.binary) body = h("p", { class: "muted pad" }, "Binary file: download diff.patch to see it.");
  else if (!fits) body = h("p", { class: "muted pad" }, "Too large to show here: download diff.patch.");
  else if (file.hunks.length === 0) body = h("p", { class: "muted pad" }, "No line changes (mode or name only).");
  else {
    body = h("div", { class: "diff-scroll" }, h("table", { class: "diff-table" },
      h("tbody", {}, file.hunks.map((hunk) => [
        h("tr", { class: "hunk" }, h("td", { colspan: 3 }, hunk.header)),
        hunk.lines.map(lineRow),
      ]))));
  }
  return h("details", { class: "diff-file", open: true, dataset: { path: path || "" } },
    h("summary", {},
      h("span", { class: `file-kind ${file.kind}` }, file.kind),
      h("span", { class: "file-path" }, title || "(unnamed)"),
      h("span", { class: "file-counts" },
        h("span", { class: "added" }, `+${file.added}`), " ",
        h("span", { class: "removed" }, `−${file.removed}`))),
    body);
}

const SIGNS = { add: "+", del: "-", ctx: " ", note: "" };

function lineRow(line) {
  return h("tr", { class: `line ${line.kind}` },
    h("td", { class: "ln" }, line.old ?? ""),
    h("td", { class: "ln" }, line.new ?? ""),
    h("td", { class: "code" }, h("span", { class: "sign", "aria-hidden": "true" }, SIGNS[line.kind]), line.text));
}
