"""What a generation needs besides plain text: structured output, tool calls, thinking traces.

(Not ``corral.generate``: importing a subpackage sets it as an attribute of ``corral``, which would shadow
the SDK's ``corral.generate`` function in any process that also runs the server.)

- :mod:`corral.output.grammar` turns ``format`` (``"json"`` or a JSON Schema) into a GBNF grammar that
  the runner's grammar sampler enforces token by token;
- :mod:`corral.output.toolcalls` finds tool calls in a model's streamed output (Hermes/Qwen
  ``<tool_call>``, Llama 3 JSON, Mistral ``[TOOL_CALLS]``, or the prefix of a Go template's
  ``.ToolCalls`` block);
- :mod:`corral.output.thinking` splits a ``<think>…</think>`` style trace from the answer, with the
  tags read from the model's template;
- :mod:`corral.output.features` ties them to one request: capability checks with Ollama's texts,
  ``think`` defaults, and one streaming splitter for the routes.

Nothing here touches the engine: the server runs these on text, the runner only sees a grammar string.
"""

from __future__ import annotations
