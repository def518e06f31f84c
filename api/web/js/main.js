// The page's router: `#/tasks` (the list, `?status=` filters), `#/new` (submit),
// `#/tasks/{id}` (one task, live). Without a token in this tab's session, every route
// shows the sign-in form first. Each view returns a function that stops its timers and
// streams when the view is left.

import { clearToken, onUnauthorized, token } from "./api.js";
import { showSignIn } from "./signin.js";
import { showList } from "./list.js";
import { showSubmit } from "./submit.js";
import { showTask } from "./task.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let leave = null;

function parseRoute() {
  const hash = location.hash || "#/tasks";
  if (!hash.startsWith("#/")) return null; // "#main" (the skip link) is not a route
  const [path, query = ""] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function render() {
  const route = parseRoute();
  if (!route) return;
  if (leave) {
    leave();
    leave = null;
  }
  main.replaceChildren();
  const signedIn = Boolean(token());
  nav.hidden = !signedIn;
  for (const link of nav.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === (route.parts[0] === "new" ? "new" : "tasks");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!signedIn) {
    leave = showSignIn(main, render);
    return;
  }
  const [first, id] = route.parts;
  if (first === "new") leave = showSubmit(main);
  else if (first === "tasks" && id) leave = showTask(main, id);
  else leave = showList(main, route.params);
}

document.getElementById("sign-out").addEventListener("click", () => {
  clearToken();
  location.hash = "#/tasks";
  render();
});

onUnauthorized(() => {
  clearToken();
  render();
});

window.addEventListener("hashchange", render);
render();
