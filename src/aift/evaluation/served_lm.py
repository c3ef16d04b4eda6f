"""lm-evaluation-harness driving any model aift serves, in this process.

lm-eval's transformers backend needs a transformers model; a GGUF export, an MoE built
here or a remote Ollama model is only reachable through aift's serving layer — the same
calls its OpenAI and Ollama APIs make. `ServedLM` is lm-eval's model interface over
that layer: generation tasks run (raw prompts as completions; with the chat template
option, lm-eval's chat turns as a chat request, as its own chat-completions backend
does). Tasks that score choices by log-likelihood need the prompt's token
log-probabilities, which llama.cpp's sampling loop and Ollama do not give back; they
are refused with the way to run them (the transformers model the export came from).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lm_eval.api.model import LM

from aift.errors import InvalidInput

# (prompt text, or chat turns) , stop sequences, most tokens → the model's greedy text
Generate = Callable[[str | list[dict[str, str]], list[str], int], str]

DEFAULT_MAX_TOKENS = 256
MAX_STOPS = 8


class ServedLM(LM):
    """lm-eval's model interface over a served model's greedy generation."""

    def __init__(self, name: str, generate: Generate, check: Callable[[], None]) -> None:
        super().__init__()
        self.name = name
        self.generate = generate
        self.check = check  # raises when the job is cancelled

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Each request's greedy continuation, cut at its first stop sequence."""
        out = []
        for request in requests:
            self.check()
            context, options = request.args
            until = options.get("until") or []
            stops = [until] if isinstance(until, str) else [s for s in until if s][:MAX_STOPS]
            most = int(options.get("max_gen_toks") or DEFAULT_MAX_TOKENS)
            prompt = turns(context) if isinstance(context, ChatPrompt) else str(context)
            text = self.generate(prompt, stops, most)
            for stop in stops:  # engines may keep a stop's first characters
                text = text.split(stop)[0]
            out.append(text)
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise InvalidInput(self._no_logprobs("scores answer choices by log-likelihood"))

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise InvalidInput(self._no_logprobs("measures perplexity"))

    def _no_logprobs(self, what: str) -> str:
        return (
            f"This task {what}, which needs the prompt's token log-probabilities; "
            f"{self.name} is served by an engine that does not give them (llama.cpp, "
            "Ollama). Run it on the transformers model the export was made from, or use a "
            "generation task."
        )

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Keep the turns: the serving layer applies the model's own chat template."""
        return ChatPrompt(json.dumps(chat_history))

    @property
    def tokenizer_name(self) -> str:
        return self.name

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return ""


class ChatPrompt(str):
    """A chat's turns, carried through lm-eval as the string it expects for a prompt."""


def turns(prompt: ChatPrompt) -> list[dict[str, str]]:
    """The chat turns a `ChatPrompt` carries."""
    return [{"role": t["role"], "content": str(t["content"])} for t in json.loads(prompt)]
