"""Tokenizers of models (without their weights), for datasets and token statistics."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.models.inspect import file_version
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

log = logging.getLogger(__name__)

_cache: dict[str, PreTrainedTokenizerBase] = {}
_lock = threading.Lock()


def load_tokenizer(resolver: ModelResolver, ref: str | None) -> PreTrainedTokenizerBase:
    """The tokenizer of `ref` (default: the configured LLM, or its offline stand-in)."""
    from transformers import AutoTokenizer

    resolved = resolver.resolve(ref) if ref else resolver.resolve_default(Purpose.llm)
    key = f"{resolved.path}/{resolved.file or ''}"
    with _lock:
        if key not in _cache:
            if resolved.format == ModelFormat.gguf and resolved.file:
                gguf = Path(resolved.path) / resolved.file
                tokenizer = gguf_tokenizer(gguf, resolver.settings.effective_cache_dir)
            else:
                tokenizer = AutoTokenizer.from_pretrained(Path(resolved.path))
            tokenizer.name_or_path = resolved.name
            _cache[key] = tokenizer
        return _cache[key]


def gguf_tokenizer(gguf: Path, cache_dir: Path) -> PreTrainedTokenizerBase:
    """A GGUF file's tokenizer, read from the GGUF once and kept as a folder in the shared
    cache: reading a GGUF's vocabulary takes seconds (each dataset upload, each job
    process), the saved folder a fraction of one."""
    from transformers import AutoTokenizer

    folder = cache_dir / "tokenizers" / f"{gguf.stem}-{file_version(gguf)[:12]}"
    if (folder / "tokenizer_config.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as exc:  # a damaged copy: read the GGUF again
            log.warning("cached tokenizer %s unreadable (%s); reading the GGUF", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    try:
        tokenizer.save_pretrained(partial)
        partial.replace(folder)  # atomic: another process never reads half a folder
    except OSError as exc:  # a read-only cache, or another process saved it first
        log.debug("tokenizer of %s not cached: %s", gguf.name, exc)
        shutil.rmtree(partial, ignore_errors=True)
    return tokenizer


def render(tokenizer: PreTrainedTokenizerBase, example: dict[str, Any]) -> str:
    """One canonical example as the model will see it in training.

    A prompt-shaped example (preference, KTO, prompts) renders as its prompt followed by
    its chosen reply, its completion or its reference answer.
    """
    if "text" in example:
        return example["text"]
    messages = example.get("messages")
    if messages is None:
        reply = example.get("chosen") or example.get("completion") or []
        if not reply and example.get("answer"):
            reply = [{"role": "assistant", "content": example["answer"]}]
        messages = example["prompt"] + reply
    template = tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE
    return str(tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template))
