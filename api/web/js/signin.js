// Sign in with an API token. The token is checked against the API (a one-item task
// list) before it is kept, and kept in this tab's session storage only.

import { ApiError, call, setToken } from "./api.js";
import { h } from "./dom.js";

export function showSignIn(main, done) {
  const input = h("input", {
    id: "token", name: "token", type: "password", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "token-help token-error",
  });
  const error = h("p", { id: "token-error", class: "field-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h("form", { class: "card narrow", novalidate: true },
    h("h1", {}, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "token" }, "API token"),
      input,
      h("p", { id: "token-help", class: "help" },
        "Kept in this browser tab only, until you sign out or close it. Get one with ",
        h("code", {}, "api token create OWNER"), " (or the server's ", h("code", {}, "API_DEV_TOKEN"), ")."),
      error),
    h("div", { class: "actions" }, button));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    if (!value) return showError("Enter a token.");
    button.disabled = true;
    try {
      await call("/api/v1/tasks?limit=1", { token: value });
      setToken(value);
      if (!location.hash.startsWith("#/")) location.hash = "#/tasks";
      done();
    } catch (err) {
      showError(err instanceof ApiError && err.status === 401
        ? "The server does not know this token."
        : err.message);
    } finally {
      button.disabled = false;
    }
  });

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  main.append(form);
  input.focus();
  return () => {};
}
