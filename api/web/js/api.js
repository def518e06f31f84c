// The page's one door to the server: the public REST API, with the token from this
// browser tab's session storage in the `Authorization` header. The token never goes in
// a URL, a cookie or local storage; closing the tab forgets it.

const TOKEN_KEY = "agent-rs.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed call: HTTP status, the API's stable code, its message, and the field it is
 * about when the API names one. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

/** Listeners told when the server refuses the token (the page then asks for it again). */
const unauthorizedListeners = [];
export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

/**
 * Calls the API. `options.json` sends JSON, `options.form` sends a FormData
 * (multipart). Resolves with the parsed JSON body (or the Response for `raw`).
 */
export async function call(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const current = options.token ?? token();
  if (current) headers.set("Authorization", `Bearer ${current}`);
  let body;
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  let response;
  try {
    response = await fetch(path, {
      method: options.method || (body ? "POST" : "GET"),
      headers,
      body,
      cache: "no-store",
      credentials: "omit",
      signal: options.signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached. Check your connection and retry.");
  }
  if (!response.ok) throw await errorOf(response, options.token === undefined);
  if (options.raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

async function errorOf(response, notify) {
  let code = "http_" + response.status;
  let message = `${response.status} ${response.statusText}`.trim();
  let field = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      field = body.error.field || null;
    }
  } catch {
    // Not JSON (a proxy's page): the status line says enough.
  }
  if (response.status === 401 && notify) for (const fn of unauthorizedListeners) fn();
  return new ApiError(response.status, code, message, field);
}

export const listTasks = ({ status, cursor, limit = 25 } = {}, signal) => {
  const query = new URLSearchParams({ limit: String(limit) });
  if (status) query.set("status", status);
  if (cursor) query.set("cursor", cursor);
  return call(`/api/v1/tasks?${query}`, { signal });
};

export const getTask = (id, signal) => call(`/api/v1/tasks/${encodeURIComponent(id)}`, { signal });

export const cancelTask = (id) =>
  call(`/api/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });

export const createTask = (form, idempotencyKey) =>
  call("/api/v1/tasks", { form, headers: { "Idempotency-Key": idempotencyKey } });

export const eventTicket = (id) =>
  call(`/api/v1/tasks/${encodeURIComponent(id)}/events/ticket`, { method: "POST" });

export const updatesTicket = () => call("/api/v1/tasks/updates/ticket", { method: "POST" });

export const retryPullRequest = (id, githubToken) =>
  call(`/api/v1/tasks/${encodeURIComponent(id)}/pull-request`, {
    method: "POST",
    json: githubToken ? { github_token: githubToken } : {},
  });

export const sendFollowUp = (id, message) =>
  call(`/api/v1/tasks/${encodeURIComponent(id)}/messages`, { json: { message } });

export const listRuns = (id, signal) => call(`/api/v1/tasks/${encodeURIComponent(id)}/runs`, { signal });

export const listAttempts = (id, signal) =>
  call(`/api/v1/tasks/${encodeURIComponent(id)}/attempts`, { signal });

/** The path of an artifact: of the task's current run, or of run `run`. */
function artifactPath(id, name, run) {
  const task = `/api/v1/tasks/${encodeURIComponent(id)}`;
  const where = run ? `${task}/runs/${encodeURIComponent(run)}` : task;
  return `${where}/artifacts/${encodeURIComponent(name)}`;
}

/** An artifact's bytes as text (of run `run`, else the current run's); `null` when
 * there is none (yet). */
export async function artifactText(id, name, signal, run) {
  try {
    const response = await call(artifactPath(id, name, run), { raw: true, signal });
    return await response.text();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/** An artifact as a Blob, for a download (of run `run`, else the current run's). */
export async function artifactBlob(id, name, run) {
  const response = await call(artifactPath(id, name, run), { raw: true });
  return response.blob();
}
