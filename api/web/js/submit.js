// Submit a task: a git repository (URL and branch/commit) or a zip upload, what to do,
// and optional target file, model and limits, and best-of-N (several attempts, ranked by
// a check command). The server checks everything; an error it
// reports for a field is shown next to that field, others above the buttons. A retried
// submit (double click, flaky network) reuses one Idempotency-Key, so it cannot create
// the task twice.

import { ApiError, createTask } from "./api.js";
import { h } from "./dom.js";

const FIELDS = [
  "git_url", "git_ref", "zip_file", "description", "target_file",
  "model", "max_turns", "max_tokens", "timeout_secs", "attempts", "check",
];

function field(name, label, control, help) {
  const id = `f-${name}`;
  control.id = id;
  control.name = name;
  const describedBy = [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  return h("div", { class: "field", dataset: { field: name } },
    h("label", { for: id }, label),
    control,
    help ? h("p", { id: `${id}-help`, class: "help" }, help) : null,
    h("p", { id: `${id}-error`, class: "field-error", role: "alert", hidden: true }));
}

export function showSubmit(main) {
  let idempotencyKey = crypto.randomUUID();
  const gitRadio = h("input", { type: "radio", name: "source", value: "git", id: "source-git", checked: true });
  const zipRadio = h("input", { type: "radio", name: "source", value: "zip", id: "source-zip" });
  const gitFields = h("div", { class: "source-fields", id: "git-fields" },
    field("git_url", "Repository URL", h("input", { type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://github.com/org/repo.git" }),
      "https, ssh or git URL (or git@host:org/repo.git)."),
    field("git_ref", "Branch, tag or commit", h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "default branch" })));
  const zipFields = h("div", { class: "source-fields", id: "zip-fields", hidden: true },
    field("zip_file", "Zip of the code", h("input", { type: "file", accept: ".zip,application/zip" }),
      "The repository's files, zipped."));
  const formError = h("p", { id: "form-error", class: "notice error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button primary" }, "Submit task");

  const form = h("form", { class: "card", novalidate: true, id: "submit-form" },
    h("h1", {}, "New task"),
    h("fieldset", { class: "source" },
      h("legend", {}, "Code"),
      h("div", { class: "segmented" },
        gitRadio, h("label", { for: "source-git" }, "Git repository"),
        zipRadio, h("label", { for: "source-zip" }, "Zip upload")),
      gitFields, zipFields),
    field("description", "What should the agent do?", h("textarea", { rows: 5, required: true, placeholder: "Fix the failing test in tests/test_calc.py" })),
    field("target_file", "Target file (optional)", h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "src/calc.py" }),
      "A file to focus on, relative to the repository root."),
    h("details", { class: "limits" },
      h("summary", {}, "Model and limits (optional)"),
      h("div", { class: "grid" },
        field("model", "Model", h("input", { type: "text", autocomplete: "off", placeholder: "server default" })),
        field("max_turns", "Max turns", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric" })),
        field("max_tokens", "Max tokens", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric" })),
        field("timeout_secs", "Timeout (seconds)", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric" })))),
    h("details", { class: "limits", id: "best-of" },
      h("summary", {}, "Several attempts (optional)"),
      h("div", { class: "grid" },
        field("attempts", "Attempts", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric", placeholder: "1" }),
          "Independent tries from the same code; the best is kept."),
        field("check", "Check command", h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "python -m pytest -q" }),
          "Run in each attempt's final code; exit code 0 passes."))),
    formError,
    h("div", { class: "actions" }, submit, h("a", { href: "#/tasks", class: "button" }, "Cancel")));

  const useZip = () => zipRadio.checked;
  for (const radio of [gitRadio, zipRadio]) {
    radio.addEventListener("change", () => {
      gitFields.hidden = useZip();
      zipFields.hidden = !useZip();
    });
  }
  // A changed form is a new request: a new key, so it is not taken for a retry.
  form.addEventListener("input", () => {
    idempotencyKey = crypto.randomUUID();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, formError);
    const data = new FormData();
    const value = (name) => form.elements[name].value.trim();
    if (useZip()) {
      const file = form.elements.zip_file.files[0];
      if (!file) return showError(form, formError, new ApiError(0, "client", "Choose a zip file to upload.", "zip_file"));
      data.append("zip_file", file, file.name);
    } else {
      data.append("git_url", value("git_url"));
      if (value("git_ref")) data.append("git_ref", value("git_ref"));
    }
    // The description is sent as typed: leading spaces may matter to the agent.
    data.append("description", form.elements.description.value);
    for (const name of ["target_file", "model", "max_turns", "max_tokens", "timeout_secs", "attempts", "check"]) {
      if (value(name)) data.append(name, value(name));
    }
    submit.disabled = true;
    submit.textContent = "Submitting…";
    try {
      const task = await createTask(data, idempotencyKey);
      location.hash = `#/tasks/${encodeURIComponent(task.id)}`;
    } catch (err) {
      showError(form, formError, err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Submit task";
    }
  });

  main.append(form);
  form.elements.git_url.focus();
  return () => {};
}

function clearErrors(form, formError) {
  formError.hidden = true;
  for (const el of form.querySelectorAll(".field-error")) el.hidden = true;
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** Shows `err` next to its field when the API named one the form has, else above the
 * buttons; focuses what needs fixing. */
function showError(form, formError, err) {
  const name = err instanceof ApiError && FIELDS.includes(err.field) ? err.field : null;
  const control = name ? form.elements[name] : null;
  if (control) {
    const error = document.getElementById(`${control.id}-error`);
    error.textContent = err.message;
    error.hidden = false;
    control.setAttribute("aria-invalid", "true");
    const details = control.closest("details");
    if (details) details.open = true;
    control.focus();
    return;
  }
  formError.textContent = err.message || "The task could not be submitted.";
  formError.hidden = false;
  formError.focus?.();
}
