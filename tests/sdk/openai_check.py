"""Calls a tollgate `llm` route with the official `openai` Python SDK, streaming and not.

Reads TOLLGATE_BASE_URL (e.g. http://127.0.0.1:8080/llm/v1), TOLLGATE_KEY and TOLLGATE_MODEL,
prints one JSON object with what came back, and exits non-zero on any error the SDK raises.
The Rust test `it::llm_sdk` runs it and checks the figures against the gateway's usage log.
"""

import json
import os
import sys

import openai


def main() -> int:
    client = openai.OpenAI(
        base_url=os.environ["TOLLGATE_BASE_URL"],
        api_key=os.environ["TOLLGATE_KEY"],
        max_retries=0,
        timeout=20.0,
    )
    model = os.environ["TOLLGATE_MODEL"]
    messages = [{"role": "user", "content": "Say hello."}]

    plain = client.chat.completions.create(model=model, messages=messages)
    text = []
    usage = None
    with client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    text.append(choice.delta.content)
            if chunk.usage is not None:
                usage = chunk.usage
    models = [m.id for m in client.models.list()]
    print(
        json.dumps(
            {
                "sdk": f"openai-python {openai.__version__}",
                "plain": {
                    "content": plain.choices[0].message.content,
                    "prompt_tokens": plain.usage.prompt_tokens if plain.usage else None,
                    "completion_tokens": plain.usage.completion_tokens if plain.usage else None,
                },
                "stream": {
                    "content": "".join(text),
                    "prompt_tokens": usage.prompt_tokens if usage else None,
                    "completion_tokens": usage.completion_tokens if usage else None,
                },
                "models": models,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
