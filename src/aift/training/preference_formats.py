"""Rows of preference, KTO and prompt datasets as canonical examples.

Canonical shapes (chat messages throughout, so the model's chat template renders them):

- preference: `{"prompt": [...], "chosen": [...], "rejected": [...]}`: the conversation so
  far, and the preferred and the dispreferred assistant reply;
- kto: `{"prompt": [...], "completion": [...], "label": true|false}`: one reply, good or bad;
- prompts: `{"prompt": [...], "answer": "..." | null}`: a prompt and its reference answer
  (what GRPO's rewards compare with), with `document` and `page` when the row names the
  knowledge-base page that supports the answer (what a cites_page reward checks).

Accepted rows: prompt/chosen/rejected as texts or message lists; UltraFeedback's shape
(chosen and rejected are whole conversations that repeat the prompt); Anthropic HH's
(chosen and rejected are transcripts "\\n\\nHuman: …\\n\\nAssistant: …" sharing all but the
last reply); KTO's prompt/completion/label; prompts as `prompt` or `question` with
`answer`, `solution` or `ground_truth`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aift.training.cells import ROLES, SHAREGPT_ROLES, cell_text
from aift.training.schemas import DatasetFormat

Messages = list[dict[str, str]]

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
PROMPT_KEYS = ("prompt", "question")
ANSWER_KEYS = ("answer", "solution", "ground_truth")
TRUE_LABELS = {"true", "1", "yes", "good", "desirable"}
FALSE_LABELS = {"false", "0", "no", "bad", "undesirable"}


def _hh_turns(text: str) -> Messages | None:
    """An Anthropic HH transcript as messages, or None when the text is not one."""
    parts = _HH_TURN.split(text)
    if len(parts) < 3:
        return None
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        {"role": roles[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def conversation(value: Any, role: str) -> Messages | str:
    """Messages from a text (one turn of `role`, or an HH transcript), a JSON text of a
    list, or a list of {role, content} / {from, value} turns; or why it is not one."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)  # CSV cells hold JSON
        except ValueError:
            pass
    if isinstance(value, str):
        if not value.strip():
            return "is empty"
        return _hh_turns(value) or [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        return "is neither a text nor a list of messages"
    messages: Messages = []
    for index, turn in enumerate(value, start=1):
        if not isinstance(turn, dict):
            return f"turn {index} is not an object"
        name = turn.get("role", SHAREGPT_ROLES.get(str(turn.get("from", "")).lower()))
        content = cell_text(turn.get("content", turn.get("value")))
        if name not in ROLES:
            return f"turn {index} has role {name!r}; use system, user or assistant"
        if not content or not content.strip():
            return f"turn {index} is empty"
        messages.append({"role": str(name), "content": content})
    return messages


def _field(row: dict, key: str, role: str) -> Messages | str:
    value = conversation(row.get(key), role)
    return f"`{key}` {value}" if isinstance(value, str) else value


def _check_prompt(prompt: Messages) -> str | None:
    if not prompt:
        return "has no prompt"
    if prompt[-1]["role"] != "user":
        return "has a prompt that does not end with a user turn"
    return None


def _check_reply(reply: Messages, key: str) -> str | None:
    if not reply:
        return f"has an empty `{key}`"
    if any(m["role"] != "assistant" for m in reply):
        return f"has a `{key}` that is not only assistant turns"
    return None


def _split_prompt(row: dict, chosen: Messages, rejected: Messages) -> tuple[Messages, ...] | str:
    """(prompt, chosen reply, rejected reply): the row's prompt with any repetition of it
    cut from the replies, or, with no prompt, the turns both share before their last."""
    if row.get("prompt") is None:
        if chosen[:-1] != rejected[:-1]:
            return "has `chosen` and `rejected` that differ before their last turn"
        return chosen[:-1], chosen[-1:], rejected[-1:]
    prompt = _field(row, "prompt", "user")
    if isinstance(prompt, str):
        return prompt
    replies = []
    for reply in (chosen, rejected):
        if reply[: len(prompt)] == prompt:  # UltraFeedback: the conversation repeats it
            reply = reply[len(prompt) :]
        elif len(prompt) == 1 and reply[:1] and reply[0]["role"] == "user":
            if reply[0]["content"].strip() != prompt[0]["content"].strip():
                return "has a reply that starts with a different user turn than the prompt"
            reply = reply[1:]
        replies.append(reply)
    return prompt, replies[0], replies[1]


def preference_example(row: dict) -> dict[str, Any] | str:
    """The canonical preference example of a row, or why it cannot be one."""
    chosen, rejected = _field(row, "chosen", "assistant"), _field(row, "rejected", "assistant")
    if isinstance(chosen, str) or isinstance(rejected, str):
        return chosen if isinstance(chosen, str) else str(rejected)
    parts = _split_prompt(row, chosen, rejected)
    if isinstance(parts, str):
        return parts
    prompt, chosen, rejected = parts
    problem = (
        _check_prompt(prompt)
        or _check_reply(chosen, "chosen")
        or _check_reply(rejected, "rejected")
    )
    if problem:
        return problem
    if chosen == rejected:
        return "has the same `chosen` and `rejected` reply"
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _label(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in TRUE_LABELS else False if text in FALSE_LABELS else None


def kto_example(row: dict) -> dict[str, Any] | str:
    """The canonical KTO example of a row (prompt, completion, label), or why not."""
    prompt, completion = _field(row, "prompt", "user"), _field(row, "completion", "assistant")
    if isinstance(prompt, str) or isinstance(completion, str):
        return prompt if isinstance(prompt, str) else str(completion)
    label = _label(row.get("label"))
    if label is None:
        return f"has label {row.get('label')!r}; use true or false"
    problem = _check_prompt(prompt) or _check_reply(completion, "completion")
    return problem or {"prompt": prompt, "completion": completion, "label": label}


def prompt_example(row: dict) -> dict[str, Any] | str:
    """The canonical prompt example of a row (prompt and optional answer), or why not."""
    key = next((k for k in PROMPT_KEYS if row.get(k) is not None), "prompt")
    prompt = _field(row, key, "user")
    if isinstance(prompt, str):
        return prompt
    problem = _check_prompt(prompt)
    if problem:
        return problem
    answer = next(
        (cell_text(row[k]) for k in ANSWER_KEYS if cell_text(row.get(k)) is not None), None
    )
    example: dict[str, Any] = {
        "prompt": prompt,
        "answer": answer.strip() if answer and answer.strip() else None,
    }
    return _with_source(example, row)


def _with_source(example: dict[str, Any], row: dict) -> dict[str, Any] | str:
    """The example with the row's `document` and `page` (the page supporting its answer),
    when it names them."""
    if row.get("document") is None and row.get("page") is None:
        return example
    document, page = cell_text(row.get("document")), row.get("page")
    if not document or not document.strip():
        return "`page` is given without its `document`"
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        return f"`page` must be a page number (1 or more), not {page!r}"
    return {**example, "document": document.strip(), "page": page}


def detect(row: dict) -> DatasetFormat | None:
    """The preference-side format a row's keys say, or None."""
    if "chosen" in row and "rejected" in row:
        return DatasetFormat.preference
    if "completion" in row and "label" in row:
        return DatasetFormat.kto
    if any(k in row for k in PROMPT_KEYS) and "messages" not in row:
        return DatasetFormat.prompts
    return None


def to_example(row: dict, fmt: DatasetFormat) -> dict[str, Any] | str:
    """The canonical example of a preference, KTO or prompts row, or why it is unusable."""
    if fmt == DatasetFormat.preference:
        return preference_example(row)
    if fmt == DatasetFormat.kto:
        return kto_example(row)
    return prompt_example(row)


def unpaired(example: dict[str, Any]) -> list[dict[str, Any]]:
    """A preference example as two KTO examples: its chosen reply good, its rejected bad."""
    return [
        {"prompt": example["prompt"], "completion": example["chosen"], "label": True},
        {"prompt": example["prompt"], "completion": example["rejected"], "label": False},
    ]


def as_prompt(example: dict[str, Any]) -> dict[str, Any]:
    """A prompts example from any canonical example: a demonstration's conversation up to
    its last assistant turn, whose text becomes the reference answer."""
    if "prompt" in example:
        source: dict[str, Any] = {k: example[k] for k in ("document", "page") if k in example}
        return {"prompt": example["prompt"], "answer": example.get("answer"), **source}
    messages = example["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return {"prompt": messages[:last], "answer": messages[last]["content"]}


def as_demonstration(example: dict[str, Any]) -> dict[str, Any] | None:
    """An example as the demonstration it holds, for what scores a model on any task (a
    continual chain's losses and exact matches, its Fisher): a pair's prompt and chosen
    reply, a good KTO example, a prompt and its reference answer. None when it holds
    none (a bad KTO example, a prompt without an answer)."""
    if "messages" in example:
        return example
    prompt = example.get("prompt")
    if not isinstance(prompt, list):
        return None
    if "chosen" in example:
        return {"messages": [*prompt, *example["chosen"]]}
    if "completion" in example:
        return {"messages": [*prompt, *example["completion"]]} if example.get("label") else None
    answer = example.get("answer")
    return {"messages": [*prompt, {"role": "assistant", "content": answer}]} if answer else None


def demonstrations(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The demonstrations a list of examples holds (`as_demonstration`), in order."""
    return [d for d in map(as_demonstration, examples) if d is not None]
