"""Calls a tollgate `llm` route's `/v1/messages` with the official `anthropic` Python SDK,
streaming and not.

Reads TOLLGATE_BASE_URL (the route's root, e.g. http://127.0.0.1:8080/llm: the SDK adds
/v1/messages), TOLLGATE_KEY and TOLLGATE_MODEL, prints one JSON object, exits non-zero on error.
"""

import json
import os
import sys

import anthropic


def main() -> int:
    client = anthropic.Anthropic(
        base_url=os.environ["TOLLGATE_BASE_URL"],
        api_key=os.environ["TOLLGATE_KEY"],
        max_retries=0,
        timeout=20.0,
    )
    model = os.environ["TOLLGATE_MODEL"]
    messages = [{"role": "user", "content": "Say hello."}]

    plain = client.messages.create(model=model, max_tokens=64, messages=messages)
    with client.messages.stream(model=model, max_tokens=64, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    print(
        json.dumps(
            {
                "sdk": f"anthropic-python {anthropic.__version__}",
                "plain": {
                    "content": "".join(b.text for b in plain.content if b.type == "text"),
                    "prompt_tokens": plain.usage.input_tokens,
                    "completion_tokens": plain.usage.output_tokens,
                },
                "stream": {
                    "content": text,
                    "prompt_tokens": final.usage.input_tokens,
                    "completion_tokens": final.usage.output_tokens,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
