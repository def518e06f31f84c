// Building the page's DOM. Everything goes through text nodes and attributes: no HTML
// is ever parsed from a string (the Content-Security-Policy's Trusted Types rule makes
// the browser refuse it anyway), so whatever the agent or a user wrote shows as text.

/**
 * Creates an element. `props`: `class`, `text`, `on` ({event: handler}), `dataset`,
 * boolean attributes as true/false, anything else as an attribute. Children: nodes,
 * strings (as text), or null/false (skipped); arrays are flattened.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A link only when `url` is http(s): anything else (`javascript:`...) is shown as text. */
export function safeLink(url, text = url, props = {}) {
  try {
    const parsed = new URL(url, location.href);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") {
      return h("a", { href: parsed.href, rel: "noopener noreferrer", target: "_blank", ...props }, text);
    }
  } catch {
    // Not a URL: shown as text below.
  }
  return h("span", props, text);
}

/** Moves focus to `el` for keyboard and screen-reader users after a view change. */
export function focusHeading(el) {
  if (!el) return;
  el.setAttribute("tabindex", "-1");
  el.focus({ preventScroll: false });
}
