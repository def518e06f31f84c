// The live timeline of a task: status changes, model turns, each tool call with its
// arguments and its folded result, messages, retries and errors, built from the typed
// events of the SSE stream (or of trajectory.jsonl, the same schema). Every piece of
// text the agent or the user produced is set with textContent.

import { h } from "./dom.js";
import { count, duration, prettyJson, statusLabel } from "./format.js";

const MAX_OUTPUT_CHARS = 20000;
const FOLD_ARGS_LINES = 8;

export class Timeline {
  /** `onStats({turns, tokens})` hears of turns and token totals as they arrive. */
  constructor(list, onStats = () => {}) {
    this.list = list;
    this.onStats = onStats;
    this.calls = new Map();
    this.turns = new Map();
    this.count = 0;
  }

  add(event) {
    const item = this.render(event);
    if (!item) return;
    this.count += 1;
    item.classList.add("tl-item");
    this.list.append(item);
  }

  render(event) {
    switch (event.type) {
      case "status":
        return entry("status", statusLabel(event.status), event.message ? text(event.message) : null);
      case "task_started":
        return entry("start", "Agent started",
          text(`Model ${event.model} · ${event.tools?.length ?? 0} tools · up to ${event.max_turns} turns, ${duration(event.timeout_secs * 1000)}`));
      case "model_request":
        return this.turn(event);
      case "model_response":
        return this.turnDone(event);
      case "model_retry":
        return entry("warn", `Model request failed, retry ${event.attempt} in ${duration(event.wait_ms)}`, text(event.reason));
      case "message":
        return entry("message", "Agent", h("p", { class: "prose" }, event.content));
      case "tool_call":
        return this.toolCall(event);
      case "tool_result":
        return this.toolResult(event);
      case "context_elided":
        return entry("note", "Older tool outputs elided",
          text(`${event.elided_outputs} outputs, ~${count(event.estimated_tokens_before)} → ~${count(event.estimated_tokens_after)} tokens`));
      case "task_finished":
        return finished(event);
      case "conversation_resumed": {
        const n = Array.isArray(event.history) ? event.history.length : 0;
        return entry("start", "Continued from the previous run",
          text(event.summarized ? "The earlier turns, summarized." : `${n} earlier messages carried over.`));
      }
      case "setup_finished":
        return entry(event.success ? "note" : "error",
          event.success ? `Setup finished · ${duration(event.duration_ms)}` : `Setup failed${event.timed_out ? " (timed out)" : ""}`,
          event.log_tail ? h("details", {}, h("summary", {}, "Last lines of setup.log"), h("pre", { class: "code output" }, event.log_tail)) : null);
      default:
        return entry("note", event.type || "event", h("pre", { class: "code small" }, JSON.stringify(event, null, 2)));
    }
  }

  turn(event) {
    const meta = h("span", { class: "muted" }, "thinking…");
    const item = entry("turn", `Turn ${event.turn}`, null, meta);
    this.turns.set(event.turn, meta);
    return item;
  }

  turnDone(event) {
    const meta = this.turns.get(event.turn);
    const tokens = event.usage?.total_tokens ?? 0;
    const calls = event.tool_calls === 1 ? "1 tool call" : `${event.tool_calls} tool calls`;
    const summary = `${duration(event.duration_ms)} · ${count(tokens)} tokens · ${calls}`;
    this.onStats({ turns: event.turn, tokens: event.total_usage?.total_tokens });
    if (meta) {
      meta.textContent = summary;
      return null;
    }
    return entry("turn", `Turn ${event.turn}`, null, h("span", { class: "muted" }, summary));
  }

  toolCall(event) {
    const args = prettyJson(event.arguments || "");
    const lines = args.split("\n").length;
    const argsBlock = h("pre", { class: "code args" }, args);
    const result = h("div", { class: "tool-result pending" }, h("span", { class: "muted" }, "running…"));
    const item = entry("tool", null,
      lines > FOLD_ARGS_LINES
        ? h("details", {}, h("summary", {}, `Arguments (${lines} lines)`), argsBlock)
        : argsBlock,
      null,
      h("code", { class: "tool-name" }, event.name));
    item.append(result);
    this.calls.set(event.call_id, result);
    return item;
  }

  toolResult(event) {
    const output = event.output || "";
    const shown = output.length > MAX_OUTPUT_CHARS
      ? `${output.slice(0, MAX_OUTPUT_CHARS)}\n… (${count(output.length - MAX_OUTPUT_CHARS)} more characters in trajectory.jsonl)`
      : output;
    const lines = output === "" ? 0 : output.split("\n").length;
    const label = `${event.success ? "Result" : "Error"} · ${duration(event.duration_ms)} · ${lines} ${lines === 1 ? "line" : "lines"}`;
    const body = h("details", { class: event.success ? "" : "failed", open: !event.success },
      h("summary", {}, label),
      h("pre", { class: "code output" }, shown || "(no output)"));
    const slot = this.calls.get(event.call_id);
    if (slot) {
      slot.classList.remove("pending");
      slot.classList.toggle("failed", !event.success);
      slot.replaceChildren(body);
      return null;
    }
    return entry(event.success ? "tool" : "error", null, body, null, h("code", { class: "tool-name" }, event.name));
  }
}

function finished(event) {
  const ok = event.status === "completed";
  const figures = `${event.turns} turns · ${count(event.usage?.total_tokens)} tokens · ${duration(event.duration_ms)}`;
  return entry(ok ? "done" : "error",
    ok ? "Agent finished" : `Agent stopped: ${(event.status || "").replace("_", " ")}${event.limit ? ` (${event.limit})` : ""}`,
    event.error ? h("p", { class: "prose" }, event.error) : null,
    h("span", { class: "muted" }, figures));
}

function text(value) {
  return h("p", { class: "prose muted" }, value);
}

/** One timeline item: a kind (for the marker's colour), a title, a body, extras. */
function entry(kind, title, body = null, meta = null, titleNode = null) {
  return h("li", { class: `tl-${kind}`, dataset: { kind } },
    h("div", { class: "tl-head" },
      titleNode,
      title ? h("strong", {}, title) : null,
      meta),
    body);
}
