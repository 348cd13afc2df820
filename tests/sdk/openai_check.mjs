// Calls a tollgate `llm` route with the official `openai` Node SDK, streaming and not.
// Same environment and output as openai_check.py; exits non-zero on any error the SDK raises.
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.TOLLGATE_BASE_URL,
  apiKey: process.env.TOLLGATE_KEY,
  maxRetries: 0,
  timeout: 20_000,
});
const model = process.env.TOLLGATE_MODEL;
const messages = [{ role: 'user', content: 'Say hello.' }];

const plain = await client.chat.completions.create({ model, messages });
const stream = await client.chat.completions.create({
  model,
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let text = '';
let usage = null;
for await (const chunk of stream) {
  for (const choice of chunk.choices) text += choice.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
const models = [];
for await (const m of client.models.list()) models.push(m.id);
console.log(
  JSON.stringify({
    sdk: `openai-node ${OpenAI.VERSION ?? ''}`.trim(),
    plain: {
      content: plain.choices[0].message.content,
      prompt_tokens: plain.usage?.prompt_tokens ?? null,
      completion_tokens: plain.usage?.completion_tokens ?? null,
    },
    stream: {
      content: text,
      prompt_tokens: usage?.prompt_tokens ?? null,
      completion_tokens: usage?.completion_tokens ?? null,
    },
    models,
  }),
);
