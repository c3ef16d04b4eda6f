"""Scoring replies with a reward model trained here (`objective: reward`, registered with
kind `reward`): what GRPO's `model` reward computes during training, served so that a
user can check a reward model before training against it, or rank candidate replies.

One reward model is kept loaded at a time (a second replaces it): they are whole
transformers models, and this process also serves chat. The prompt and each reply are
rendered with the reward model's chat template and scored in one batch, as trl renders
them when the model is a GRPO reward.
"""

from __future__ import annotations

import threading
from typing import Any

from aift.errors import InvalidInput
from aift.inference.schemas import ChatMessage
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelKind

MAX_TOKENS = 8192  # per prompt + reply; longer ones are cut from the left


class RewardScorer:
    """A reward model in memory."""

    def __init__(self, name: str, path: str) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.truncation_side = "left"  # a long prompt loses its start, not the reply
        self.model: Any = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.eval()
        self._lock = threading.Lock()

    def score(self, messages: list[ChatMessage], replies: list[str]) -> list[float]:
        """The model's score of each reply to the conversation `messages`."""
        import torch

        prompt = [m.template_view() for m in messages]
        texts = [
            self.tokenizer.apply_chat_template(
                [*prompt, {"role": "assistant", "content": reply}], tokenize=False
            )
            for reply in replies
        ]
        batch = self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            padding_side="right",
            truncation=True,
            max_length=MAX_TOKENS,
            add_special_tokens=False,
        )
        with self._lock, torch.inference_mode():
            logits = self.model(**batch).logits[:, 0]
        return [float(v) for v in logits]


class RewardScorers:
    """Loads the reward model a request names, keeping one loaded at a time."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loaded: RewardScorer | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> RewardScorer:
        """The loaded reward model `name`: 404 when unknown, a clear error when the
        model is not a reward model."""
        info = self.registry.get(name)
        if info.kind != ModelKind.reward:
            raise InvalidInput(
                f"{info.name} is a {info.kind.value} model, not a reward model: train one with "
                "objective reward."
            )
        with self._lock:
            if self._loaded is None or self._loaded.name != info.name:
                self._loaded = None  # free the previous one before loading the next
                self._loaded = RewardScorer(info.name, info.path)
            return self._loaded
