// How times, durations, sizes and statuses read on the page.

export const STATUSES = [
  "PENDING", "QUEUED", "PROCESSING", "DOWNLOADING_CODE", "RUNNING_AGENT",
  "UPLOADING_RESULTS", "COMPLETED", "FAILED", "CANCELLED",
];
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

const LABELS = {
  PENDING: "Pending", QUEUED: "Queued", PROCESSING: "Preparing",
  DOWNLOADING_CODE: "Fetching code", RUNNING_AGENT: "Agent running",
  UPLOADING_RESULTS: "Uploading results", COMPLETED: "Completed",
  FAILED: "Failed", CANCELLED: "Cancelled",
};

export function statusLabel(status) {
  return LABELS[status] || status;
}

/** The colour family of a status badge. */
export function statusTone(status) {
  if (status === "COMPLETED") return "ok";
  if (status === "FAILED") return "bad";
  if (status === "CANCELLED") return "muted";
  if (status === "PENDING" || status === "QUEUED") return "wait";
  return "live";
}

/** "42 s", "3 min 5 s", "2 h 4 min". */
export function duration(ms) {
  if (!(ms >= 0)) return "–";
  if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function age(epochMs, now = Date.now()) {
  const s = Math.round((now - epochMs) / 1000);
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(epochMs).toLocaleDateString();
}

export function dateTime(epochMs) {
  return new Date(epochMs).toLocaleString();
}

/** 950, 12.3k, 1.2M. */
export function count(n) {
  if (typeof n !== "number") return "–";
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/** How long a task ran: to its last update when finished, to now while live. */
export function taskDuration(task, now = Date.now()) {
  const end = TERMINAL.has(task.status) ? task.updated_at : now;
  return end - task.created_at;
}

/** Where a task's code came from, in a few words. */
export function source(input) {
  if (!input) return "";
  if (input.type === "ZIP") return input.zip_name;
  return input.git_ref ? `${input.git_url} @ ${input.git_ref}` : input.git_url;
}

/** Pretty JSON if `text` is JSON, else the text itself. */
export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
