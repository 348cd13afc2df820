// LLM usage from an answer, by the gateway's rules: OpenAI's `usage` (prompt/completion
// tokens, in JSON or in the stream's usage chunk) and Anthropic's (`input_tokens` plus cache
// tokens as prompt, `output_tokens` as completion; in a stream from `message_start` and
// `message_delta`). Read from a copy of the body after the client has it.

export interface Usage {
  model: string | null;
  prompt: number;
  completion: number;
}

type Json = Record<string, unknown>;

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}

function apply(usage: Usage, doc: Json): void {
  if (typeof doc.model === "string") usage.model = doc.model;
  const message = doc.message as Json | undefined;
  if (message && typeof message === "object") {
    if (typeof message.model === "string") usage.model = message.model;
    if (message.usage) apply(usage, { usage: message.usage });
  }
  const u = doc.usage as Json | undefined;
  if (!u || typeof u !== "object") return;
  if ("prompt_tokens" in u || "completion_tokens" in u) {
    usage.prompt = num(u.prompt_tokens);
    usage.completion = num(u.completion_tokens);
    return;
  }
  if ("input_tokens" in u) {
    usage.prompt = num(u.input_tokens) + num(u.cache_creation_input_tokens) + num(u.cache_read_input_tokens);
  }
  if ("output_tokens" in u) usage.completion = num(u.output_tokens);
}

/** The usage in an answer's text, JSON or server-sent events. */
export function usageOf(text: string, contentType: string, requestModel: string | null): Usage {
  const usage: Usage = { model: requestModel, prompt: 0, completion: 0 };
  const docs: string[] = contentType.includes("text/event-stream")
    ? text
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .filter((d) => d && d !== "[DONE]")
    : [text];
  for (const d of docs) {
    try {
      const doc = JSON.parse(d) as unknown;
      if (doc && typeof doc === "object") apply(usage, doc as Json);
    } catch {
      // Not JSON: nothing to read.
    }
  }
  return usage;
}
