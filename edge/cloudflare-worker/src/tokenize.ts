// Token counting for the estimate, with the gateway's choice of BPE vocabulary
// (`tollgate_core::tokenize::Vocabulary::for_model`): `cl100k_base` for GPT-4 (not 4o), GPT-3.5,
// text-embedding and Claude models (an approximation for Claude), `o200k_base` for the rest.
// The ranks ship in the `js-tiktoken` package (nothing is downloaded at run time); a vocabulary
// is loaded on first use, once per isolate, and only for calls whose answer reports no usage.

import { Tiktoken, type TiktokenBPE } from "js-tiktoken/lite";

export type Vocabulary = "o200k_base" | "cl100k_base";

/** The vocabulary for a model name; unknown models use `o200k_base`. */
export function vocabularyFor(model: string | null): Vocabulary {
  const lower = (model ?? "").toLowerCase();
  const m = lower.slice(lower.lastIndexOf("/") + 1);
  const cl100k = ["gpt-4-", "gpt-3.5", "gpt-35", "text-embedding-", "claude"];
  if (m === "gpt-4" || (cl100k.some((p) => m.startsWith(p)) && !m.startsWith("gpt-4o"))) return "cl100k_base";
  return "o200k_base";
}

const loaded = new Map<Vocabulary, Promise<Tiktoken>>();

function load(vocabulary: Vocabulary): Promise<Tiktoken> {
  let encoder = loaded.get(vocabulary);
  if (!encoder) {
    const ranks: Promise<{ default: TiktokenBPE }> =
      vocabulary === "cl100k_base" ? import("js-tiktoken/ranks/cl100k_base") : import("js-tiktoken/ranks/o200k_base");
    encoder = ranks.then((r) => new Tiktoken(r.default));
    loaded.set(vocabulary, encoder);
  }
  return encoder;
}

/** The tokens of `text` with the model's vocabulary (special tokens counted as text). */
export async function countTokens(model: string | null, text: string): Promise<number> {
  if (!text) return 0;
  try {
    return (await load(vocabularyFor(model))).encode(text, [], []).length;
  } catch (e) {
    // The ranks ship with the Worker; failing to load them is a build defect. Count with the
    // usual four-characters-a-token rule rather than not at all, as the gateway does.
    console.error("tokenizer failed", e);
    return Math.ceil([...text].length / 4);
  }
}
