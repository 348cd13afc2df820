// LLM usage capture by the gateway's rules (crates/tollgate-gateway/src/capture/):
//
// - the request: its model, stream flag and prompt text; an OpenAI chat or completions stream
//   that does not ask for `stream_options.include_usage` is rewritten to ask for it, and the
//   usage-only chunk this adds (and the `"usage":null` it adds to every other chunk) is hidden
//   from the client, who sees exactly the stream it asked for, at most one event late;
// - the answer: OpenAI's usage (Chat Completions and the Responses API, JSON and SSE) and
//   Anthropic's (`input_tokens` plus cache tokens as prompt, `output_tokens` as completion; in a
//   stream from `message_start` and `message_delta`), read from a copy of the body;
// - when the answer reports no usage, the tokens are estimated from the prompt and answer text
//   with the model's BPE vocabulary and the event is marked `estimated`; an upstream error (an
//   error object or a status that is not 2xx) is never estimated; a stream cut before its
//   closing usage is estimated from its text when that says more.

import { countTokens } from "./tokenize.js";

export type Kind = "http" | "openai" | "anthropic";

/** Most prompt or answer text kept for the estimate, in characters (the gateway keeps 1 MiB). */
const TEXT_CAP = 1 << 20;

class CappedText {
  text = "";
  full = false;

  push(piece: string): void {
    if (this.full || !piece) return;
    const room = TEXT_CAP - this.text.length;
    if (piece.length <= room) {
      this.text += piece;
      return;
    }
    this.text += piece.slice(0, room);
    this.full = true;
  }

  pushPiece(piece: string): void {
    if (!piece) return;
    if (this.text) this.push("\n");
    this.push(piece);
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** What the Worker learned from an LLM request body. */
export interface RequestInfo {
  model: string | null;
  stream: boolean;
  /** The Worker added `stream_options.include_usage` and hides the usage-only chunk. */
  injectedIncludeUsage: boolean;
  promptText: string;
}

function collectPrompt(value: unknown, out: CappedText): void {
  if (out.full) return;
  if (typeof value === "string") out.pushPiece(value);
  else if (Array.isArray(value)) for (const item of value) collectPrompt(item, out);
  else if (isObject(value)) {
    for (const name of ["text", "content"]) if (name in value) collectPrompt(value[name], out);
  }
}

const PROMPT_FIELDS: Record<Exclude<Kind, "http">, string[]> = {
  openai: ["messages", "prompt", "input"],
  anthropic: ["system", "messages"],
};

/** Reads an LLM request body; returns what it learned and, when the body must change (an OpenAI
 * stream without `include_usage`), the body to forward instead. */
export function inspectRequest(kind: Kind, body: string): { info: RequestInfo; rewritten: string | null } {
  const info: RequestInfo = { model: null, stream: false, injectedIncludeUsage: false, promptText: "" };
  if (kind === "http") return { info, rewritten: null };
  let fields: unknown;
  try {
    fields = JSON.parse(body);
  } catch {
    return { info, rewritten: null };
  }
  if (!isObject(fields)) return { info, rewritten: null };
  if (typeof fields.model === "string") info.model = fields.model;
  info.stream = fields.stream === true;
  const prompt = new CappedText();
  for (const name of PROMPT_FIELDS[kind]) if (name in fields) collectPrompt(fields[name], prompt);
  info.promptText = prompt.text;
  if (kind !== "openai") return { info, rewritten: null };
  // Only chat and legacy completions take `stream_options`; the Responses API (`input`) refuses
  // unknown parameters and reports usage in every stream anyway.
  const options = fields.stream_options;
  const asksUsage = isObject(options) && options.include_usage === true;
  const completions = "messages" in fields || "prompt" in fields;
  if (!info.stream || !completions || asksUsage) return { info, rewritten: null };
  info.injectedIncludeUsage = true;
  return { info, rewritten: withIncludeUsage(body, fields) };
}

/** The body with `stream_options.include_usage` set to true. Without `stream_options` (the usual
 * case) the member is appended and every other byte is kept, as the gateway does; otherwise the
 * body is written anew with the flag set. */
function withIncludeUsage(body: string, fields: Json): string {
  if (!("stream_options" in fields)) {
    const close = body.lastIndexOf("}");
    const before = body.slice(0, close).trimEnd();
    const comma = before.endsWith("{") ? "" : ",";
    return `${before}${comma}"stream_options":{"include_usage":true}${body.slice(close)}`;
  }
  const options = isObject(fields.stream_options) ? fields.stream_options : {};
  return JSON.stringify({ ...fields, stream_options: { ...options, include_usage: true } });
}

/** Token counts as the answer reported them so far (the gateway's `Counts`). */
interface Counts {
  input?: number;
  output?: number;
  total?: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
  /** The final figures arrived (a JSON answer, or the stream's closing usage). */
  complete: boolean;
}

export interface Tokens {
  prompt: number;
  completion: number;
  total: number;
  cached: number;
  reasoning: number;
}

export interface Usage {
  model: string | null;
  tokens: Tokens;
  /** The counts come from the tokenizer, not the upstream. */
  estimated: boolean;
}

const count = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;

/** Text of a value: a string; the joined texts of an array; the `text` member of an object. */
function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(textOf).join("");
  if (isObject(v)) return textOf(v.text);
  return "";
}

class Observed {
  model: string | null = null;
  counts: Counts = { complete: false };
  text = new CappedText();
  failed = false;

  noteModel(v: unknown): void {
    if (this.model === null && typeof v === "string" && v) this.model = v;
  }
}

function detail(details: unknown, name: string): number {
  return isObject(details) ? (count(details[name]) ?? 0) : 0;
}

/** OpenAI `usage`, Chat Completions or Responses API naming; null when it holds no count. */
function openaiTokens(u: unknown): Tokens | null {
  if (!isObject(u)) return null;
  let prompt: number | undefined;
  let completion: number | undefined;
  let cached: number;
  let reasoning: number;
  if (count(u.prompt_tokens) !== undefined || count(u.completion_tokens) !== undefined) {
    [prompt, completion] = [count(u.prompt_tokens), count(u.completion_tokens)];
    cached = detail(u.prompt_tokens_details, "cached_tokens");
    reasoning = detail(u.completion_tokens_details, "reasoning_tokens");
  } else if (count(u.input_tokens) !== undefined || count(u.output_tokens) !== undefined) {
    [prompt, completion] = [count(u.input_tokens), count(u.output_tokens)];
    cached = detail(u.input_tokens_details, "cached_tokens");
    reasoning = detail(u.output_tokens_details, "reasoning_tokens");
  } else {
    return null;
  }
  const p = prompt ?? 0;
  const c = completion ?? 0;
  return { prompt: p, completion: c, total: count(u.total_tokens) ?? p + c, cached, reasoning };
}

const whole = (t: Tokens): Counts => ({
  input: t.prompt,
  output: t.completion,
  total: t.total,
  cacheRead: t.cached,
  reasoning: t.reasoning,
  complete: true,
});

const RESPONSES_TEXT_DELTAS = new Set([
  "response.output_text.delta",
  "response.refusal.delta",
  "response.function_call_arguments.delta",
]);

function readOpenai(doc: Json, streaming: boolean, seen: Observed): void {
  seen.failed ||= doc.error !== undefined && doc.error !== null;
  seen.noteModel(doc.model);
  const usage = openaiTokens(doc.usage);
  if (usage) seen.counts = whole(usage);
  if (isObject(doc.response)) {
    seen.noteModel(doc.response.model);
    const inner = openaiTokens(doc.response.usage);
    if (inner) seen.counts = whole(inner);
  }
  if (Array.isArray(doc.choices)) {
    for (const choice of doc.choices) {
      if (!isObject(choice)) continue;
      for (const message of [choice.delta, choice.message]) {
        if (!isObject(message)) continue;
        seen.text.push(textOf(message.content));
        if (Array.isArray(message.tool_calls)) {
          for (const call of message.tool_calls) {
            if (isObject(call) && isObject(call.function)) seen.text.push(textOf(call.function.arguments));
          }
        }
      }
      seen.text.push(textOf(choice.text));
    }
  }
  if (streaming) {
    if (typeof doc.type === "string" && RESPONSES_TEXT_DELTAS.has(doc.type)) seen.text.push(textOf(doc.delta));
  } else if (Array.isArray(doc.output)) {
    // Streams repeat the whole output in `response.completed`: only answers are read here.
    for (const item of doc.output) {
      if (!isObject(item)) continue;
      seen.text.push(textOf(item.content));
      seen.text.push(textOf(item.arguments));
    }
  }
}

/** Takes the figures an Anthropic usage object states; the others keep their value. */
function mergeAnthropic(counts: Counts, u: unknown): void {
  if (!isObject(u)) return;
  const set = (v: unknown, put: (n: number) => void) => {
    const n = count(v);
    if (n !== undefined) put(n);
  };
  set(u.input_tokens, (n) => (counts.input = n));
  set(u.output_tokens, (n) => (counts.output = n));
  set(u.cache_read_input_tokens, (n) => (counts.cacheRead = n));
  set(u.cache_creation_input_tokens, (n) => (counts.cacheWrite = n));
}

function readAnthropic(doc: Json, streaming: boolean, seen: Observed): void {
  seen.failed ||= doc.error !== undefined && doc.error !== null;
  seen.noteModel(doc.model);
  if (isObject(doc.message)) {
    seen.noteModel(doc.message.model);
    mergeAnthropic(seen.counts, doc.message.usage);
  }
  if (isObject(doc.usage)) {
    mergeAnthropic(seen.counts, doc.usage);
    seen.counts.complete = true;
  }
  if (isObject(doc.delta)) {
    seen.text.push(textOf(doc.delta.text));
    seen.text.push(textOf(doc.delta.partial_json));
    seen.text.push(textOf(doc.delta.thinking));
  }
  if (!streaming) seen.text.push(textOf(doc.content));
}

function anthropicTokens(c: Counts): Tokens | null {
  if ([c.input, c.output, c.cacheRead, c.cacheWrite].every((v) => v === undefined)) return null;
  const cached = c.cacheRead ?? 0;
  const prompt = (c.input ?? 0) + cached + (c.cacheWrite ?? 0);
  const completion = c.output ?? 0;
  return { prompt, completion, total: prompt + completion, cached, reasoning: 0 };
}

function openaiWhole(c: Counts): Tokens | null {
  if (c.input === undefined || c.output === undefined) return null;
  return {
    prompt: c.input,
    completion: c.output,
    total: c.total ?? c.input + c.output,
    cached: c.cacheRead ?? 0,
    reasoning: c.reasoning ?? 0,
  };
}

/** The data of each event of a server-sent event stream (`data` lines joined with `\n`). */
export function sseData(text: string): string[] {
  const out: string[] = [];
  let data: string[] = [];
  for (const line of text.split(/\r\n|\n|\r/)) {
    if (line === "") {
      if (data.length) out.push(data.join("\n"));
      data = [];
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== "data") continue;
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    data.push(value);
  }
  // Some servers omit the last blank line: the event still counts.
  if (data.length) out.push(data.join("\n"));
  return out;
}

const ZERO: Tokens = { prompt: 0, completion: 0, total: 0, cached: 0, reasoning: 0 };

/** The call's usage from the whole answer text (read from the copy, after the client has it):
 * what the upstream reported, else an estimate when one can be trusted. */
export async function settle(
  kind: Kind,
  request: RequestInfo,
  answer: string,
  sse: boolean,
  status: number,
  estimate = true,
): Promise<Usage> {
  const seen = new Observed();
  if (kind === "http") return { model: request.model, tokens: { ...ZERO }, estimated: false };
  const read = kind === "openai" ? readOpenai : readAnthropic;
  const docs = sse ? sseData(answer) : [answer];
  for (const d of docs) {
    if (!d.trimStart().startsWith("{")) continue;
    try {
      const doc = JSON.parse(d) as unknown;
      if (isObject(doc)) read(doc, sse, seen);
    } catch {
      // Not JSON: nothing to read.
    }
  }
  const model = seen.model ?? request.model;
  const reported = kind === "openai" ? openaiWhole(seen.counts) : anthropicTokens(seen.counts);
  if (reported && sse && !seen.counts.complete && estimate) {
    // Cut before its closing usage: the streamed text may show more.
    const counted = await countTokens(model, seen.text.text);
    if (counted > reported.completion) {
      return {
        model,
        tokens: { ...reported, completion: counted, total: reported.prompt + counted },
        estimated: true,
      };
    }
    return { model, tokens: reported, estimated: false };
  }
  if (reported) return { model, tokens: reported, estimated: false };
  const errorStatus = status < 200 || status >= 300;
  if (!estimate || seen.failed || errorStatus || (model === null && !seen.text.text)) {
    return { model, tokens: { ...ZERO }, estimated: false };
  }
  const prompt = await countTokens(model, request.promptText);
  const completion = await countTokens(model, seen.text.text);
  return {
    model,
    tokens: { prompt, completion, total: prompt + completion, cached: 0, reasoning: 0 },
    estimated: true,
  };
}

/** Whether an OpenAI stream event's data is the usage-only chunk `include_usage` adds. */
function injectedChunk(data: string): boolean {
  try {
    const doc = JSON.parse(data) as unknown;
    return isObject(doc) && Array.isArray(doc.choices) && doc.choices.length === 0 && isObject(doc.usage);
  } catch {
    return false;
  }
}

/** `value` (one data line's JSON) without its top-level `"usage":null` member, or null. */
function withoutNullUsage(value: string): string | null {
  // OpenAI's own layout: the member comes last, compact.
  const tail = ',"usage":null}';
  if (value.endsWith(tail)) return value.slice(0, -tail.length) + "}";
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return null;
  }
  if (!isObject(doc) || !("usage" in doc) || doc.usage !== null) return null;
  // Another layout: the same member in another place (its bytes elsewhere are kept).
  const m = /(,\s*"usage"\s*:\s*null(?=\s*[,}]))|("usage"\s*:\s*null\s*,?)/.exec(value);
  if (!m) return null;
  const edited = value.slice(0, m.index) + value.slice(m.index + m[0].length);
  try {
    const back = JSON.parse(edited) as unknown;
    // The match must have been the top-level member: nothing else may change.
    if (isObject(back) && !("usage" in back) && Object.keys(back).length === Object.keys(doc).length - 1) {
      return edited;
    }
  } catch {
    // The match was inside a string or a nested object: leave the event alone.
  }
  return null;
}

/** The client's copy of a stream the Worker asked `include_usage` of: whole events go out as
 * soon as they end, without the usage-only chunk and without `"usage":null`. */
export function hideInjectedUsage(): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = "";
  const edit = (event: string): string => {
    // `event` ends with its blank line; its lines end with \n, \r\n or \r.
    const lines = event.match(/[^\r\n]*(\r\n|\n|\r)/g) ?? [];
    const data = lines.filter((l) => /^data(:|\r|\n)/.test(l));
    if (data.length !== 1) return event;
    const line = data[0] ?? "";
    const body = line.replace(/(\r\n|\n|\r)$/, "");
    const at = body.indexOf(":") + 1 + (body[body.indexOf(":") + 1] === " " ? 1 : 0);
    const value = body.slice(at);
    if (injectedChunk(value)) return "";
    const edited = withoutNullUsage(value);
    if (edited === null) return event;
    return event.replace(line, body.slice(0, at) + edited + line.slice(body.length));
  };
  /** The complete events at the start of `pending`, edited; keeps the rest. */
  const drain = (end: boolean): string => {
    let out = "";
    let start = 0;
    const re = /\r\n|\n|\r/g;
    let lineStart = 0;
    for (let m = re.exec(pending); m; m = re.exec(pending)) {
      // A lone \r at the end may be the first half of \r\n: wait for the next byte.
      if (m[0] === "\r" && m.index + 1 === pending.length && !end) break;
      const next = m.index + m[0].length;
      if (m.index === lineStart) {
        out += edit(pending.slice(start, next));
        start = next;
      }
      lineStart = next;
    }
    pending = pending.slice(start);
    return out;
  };
  return new TransformStream({
    transform(chunk, controller) {
      pending += decoder.decode(chunk, { stream: true });
      const out = drain(false);
      if (out) controller.enqueue(encoder.encode(out));
    },
    flush(controller) {
      pending += decoder.decode();
      let out = drain(true);
      // The body stopped inside an event: it goes out as it came.
      out += pending;
      pending = "";
      if (out) controller.enqueue(encoder.encode(out));
    },
  });
}
