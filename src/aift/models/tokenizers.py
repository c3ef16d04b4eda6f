"""Tokenizers of models (without their weights), for datasets and token statistics."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat, Purpose

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# ChatML: used to render conversations for a model that ships no chat template.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_cache: dict[str, PreTrainedTokenizerBase] = {}
_lock = threading.Lock()


def load_tokenizer(resolver: ModelResolver, ref: str | None) -> PreTrainedTokenizerBase:
    """The tokenizer of `ref` (default: the configured LLM, or its offline stand-in)."""
    from transformers import AutoTokenizer

    resolved = resolver.resolve(ref) if ref else resolver.resolve_default(Purpose.llm)
    key = f"{resolved.path}/{resolved.file or ''}"
    with _lock:
        if key not in _cache:
            if resolved.format == ModelFormat.gguf:
                tokenizer = AutoTokenizer.from_pretrained(resolved.path, gguf_file=resolved.file)
            else:
                tokenizer = AutoTokenizer.from_pretrained(Path(resolved.path))
            tokenizer.name_or_path = resolved.name
            _cache[key] = tokenizer
        return _cache[key]


def render(tokenizer: PreTrainedTokenizerBase, example: dict[str, Any]) -> str:
    """One canonical example as the model will see it in training."""
    if "text" in example:
        return example["text"]
    template = tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE
    return str(
        tokenizer.apply_chat_template(example["messages"], tokenize=False, chat_template=template)
    )
