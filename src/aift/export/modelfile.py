"""An Ollama Modelfile for an exported GGUF: FROM, TEMPLATE, stops, SYSTEM, PARAMETERs.

Ollama renders prompts with Go templates, models ship Jinja ones. Rather than translate
Jinja syntax, aift *measures* the model's chat template: it renders conversations whose
contents are unique markers and reads off what each role's turn puts before and after
its content, the default system block and the generation prompt. From those pieces it
writes a Go template over `.Messages`, then renders probe conversations (system, user,
assistant, multi-turn) with both templates and compares them byte for byte
(`check_template`); a template it cannot reproduce is reported, never shipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aift.export.gotemplate import render as render_go
from aift.export.schemas import OllamaParameter, TemplateCheck

Render = Callable[[list[dict[str, str]], bool], str]

_MARK = {
    "S": "\u2063aift-system\u2063",
    "U1": "\u2063aift-user-1\u2063",
    "A1": "\u2063aift-assistant-1\u2063",
    "U2": "\u2063aift-user-2\u2063",
}


class TemplateShapeError(ValueError):
    """The chat template is not a sequence of per-role turns aift can translate."""


@dataclass(frozen=True)
class TurnShape:
    """What a chat template writes around each role's content."""

    head: str  # once at the start (e.g. BOS)
    default_system: str  # written when the conversation has no system message
    pre: dict[str, str]
    post: dict[str, str]
    generation: str  # the assistant's opening after the last message


def _cut(text: str, *marks: str) -> list[str]:
    """The text split around each mark, in order (an error when one is missing)."""
    pieces = []
    for mark in marks:
        before, found, text = text.partition(mark)
        if not found:
            raise TemplateShapeError("the template does not show every message's content")
        pieces.append(before)
    return [*pieces, text]


def _strip_suffix(text: str, suffix: str) -> str:
    if suffix and not text.endswith(suffix):
        raise TemplateShapeError("turns are not written the same way each time")
    return text[: len(text) - len(suffix)] if suffix else text


def _strip_prefix(text: str, prefix: str) -> str:
    if not text.startswith(prefix):
        raise TemplateShapeError("turns are not written the same way each time")
    return text[len(prefix) :]


def measure_template(render: Render, bos: str | None) -> TurnShape:
    """The turn shape of a chat template, read from renderings of marker conversations.

    `bos`: the BOS text the tokenizer adds by itself (None when it adds none); a template
    that starts with it has it as its `head`."""
    s, u1, a1, u2 = (_MARK[k] for k in ("S", "U1", "A1", "U2"))
    user_only = render([{"role": "user", "content": u1}], False)
    with_generation = render([{"role": "user", "content": u1}], True)
    generation = _strip_prefix(with_generation, user_only)
    before_user, post_user = _cut(user_only, u1)
    answered = render(
        [{"role": "user", "content": u1}, {"role": "assistant", "content": a1}], False
    )
    _, post_assistant = _cut(answered, a1)
    turns = render(
        [
            {"role": "user", "content": u1},
            {"role": "assistant", "content": a1},
            {"role": "user", "content": u2},
        ],
        False,
    )
    _, user_to_assistant, assistant_to_user, tail = _cut(turns, u1, a1, u2)
    if tail != post_user:
        raise TemplateShapeError("the last user turn ends differently from the first")
    pre_user = _strip_prefix(assistant_to_user, post_assistant)
    pre_assistant = _strip_prefix(user_to_assistant, post_user)
    head_and_default = _strip_suffix(before_user, pre_user)
    with_system = render([{"role": "system", "content": s}, {"role": "user", "content": u1}], False)
    before_system, system_to_user, _ = _cut(with_system, s, u1)
    post_system = _strip_suffix(system_to_user, pre_user)
    head = bos if bos and before_system.startswith(bos) and head_and_default.startswith(bos) else ""
    return TurnShape(
        head=head,
        default_system=head_and_default[len(head) :],
        pre={"system": before_system[len(head) :], "user": pre_user, "assistant": pre_assistant},
        post={"system": post_system, "user": post_user, "assistant": post_assistant},
        generation=generation,
    )


def _literal(text: str) -> str:
    """Template text that prints `text` as is (`{{` cannot appear bare)."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(shape: TurnShape, *, include_head: bool) -> str:
    """The Ollama TEMPLATE for a turn shape (one line of actions, so no trim markers can
    eat the whitespace the model was trained with)."""
    parts = [_literal(shape.head) if include_head else ""]
    if shape.default_system:
        parts.append(
            '{{ if not (and .Messages (eq (index .Messages 0).Role "system")) }}'
            f"{_literal(shape.default_system)}{{{{ end }}}}"
        )
    parts.append("{{ range .Messages }}")
    branches = []
    for role in ("system", "user", "assistant"):
        branches.append(
            f'if eq .Role "{role}" }}}}{_literal(shape.pre[role])}{{{{ .Content }}}}'
            f"{_literal(shape.post[role])}"
        )
    parts.append("{{ " + "{{ else ".join(branches) + "{{ end }}")
    parts.append("{{ end }}")
    parts.append(_literal(shape.generation))
    return "".join(parts)


PROBE_CONVERSATIONS: tuple[tuple[str, list[dict[str, str]]], ...] = (
    ("user", [{"role": "user", "content": "What is the capital of France?"}]),
    (
        "system+user",
        [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Capital of Germany?"},
        ],
    ),
    (
        "multi-turn",
        [
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello. How can I help?"},
            {"role": "user", "content": "Name a colour.\nJust one."},
        ],
    ),
    (
        "system+multi-turn",
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
            {"role": "assistant", "content": "6"},
            {"role": "user", "content": "  spaces  and {{ braces }} "},
        ],
    ),
)


def ollama_view(messages: list[dict[str, str]]) -> dict[str, Any]:
    """The data Ollama gives a TEMPLATE for a chat request."""
    return {"Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}


def trims_content(render: Render) -> bool:
    """Whether the chat template strips whitespace around message contents (Llama 3's
    does; Go templates cannot, so Ollama sends contents as they are)."""
    mark = _MARK["U1"]
    padded = render([{"role": "user", "content": f"  {mark} "}], False)
    return padded == render([{"role": "user", "content": mark}], False)


def check_template(template: str, render: Render, prefix: str = "") -> TemplateCheck:
    """Render every probe conversation with the Go TEMPLATE (after `prefix`, the BOS the
    runner adds) and with the Jinja chat template; report the first difference. When the
    chat template trims contents, the TEMPLATE is given trimmed contents (and a note
    says that untrimmed contents will keep their spaces in Ollama)."""
    trimmed = trims_content(render)
    note = (
        "the chat template trims message contents; Ollama passes them as they are"
        if trimmed
        else None
    )
    for name, messages in PROBE_CONVERSATIONS:
        expected = render(messages, True)
        view = [{**m, "content": m["content"].strip()} for m in messages] if trimmed else messages
        try:
            got = prefix + render_go(template, ollama_view(view))
        except ValueError as exc:
            return TemplateCheck(
                passed=False, cases=len(PROBE_CONVERSATIONS), failure=f"{name}: {exc}"
            )
        if got != expected:
            return TemplateCheck(
                passed=False,
                cases=len(PROBE_CONVERSATIONS),
                failure=f"{name}: expected {expected!r}, the TEMPLATE gives {got!r}",
                note=note,
            )
    return TemplateCheck(passed=True, cases=len(PROBE_CONVERSATIONS), note=note)


def hf_renderer(tokenizer_dir: Path) -> tuple[Render, Any]:
    """The model's own chat template (through transformers) and its tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if not tokenizer.chat_template:
        raise TemplateShapeError(f"{tokenizer_dir} has no chat template")

    def render(messages: list[dict[str, str]], generation: bool) -> str:
        return str(
            tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation
            )
        )

    return render, tokenizer


@dataclass(frozen=True)
class OllamaTemplate:
    """A translated TEMPLATE, the stops it implies, and how it compared."""

    template: str | None
    stops: list[str]
    check: TemplateCheck


def translate(tokenizer_dir: Path, add_bos: bool) -> OllamaTemplate:
    """The Ollama TEMPLATE of a model's chat template, checked on the probe conversations."""
    render, tokenizer = hf_renderer(tokenizer_dir)
    bos = tokenizer.bos_token if add_bos else None
    stops = [t for t in {tokenizer.eos_token, *_turn_ends(tokenizer)} if t]
    try:
        shape = measure_template(render, bos)
    except TemplateShapeError as exc:
        failure = TemplateCheck(passed=False, cases=0, failure=str(exc))
        return OllamaTemplate(None, sorted(stops), failure)
    runner_adds_bos = bool(shape.head)
    template = go_template(shape, include_head=not runner_adds_bos)
    check = check_template(template, render, prefix=shape.head if runner_adds_bos else "")
    return OllamaTemplate(template, sorted(stops), check)


def _turn_ends(tokenizer: Any) -> list[str]:
    """Special tokens that end a turn in common templates and exist in this vocabulary."""
    known = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
    vocab = tokenizer.get_vocab()
    return [t for t in known if t in vocab and t in str(tokenizer.chat_template)]


def _quote(text: str) -> str:
    """A Modelfile value: triple-quoted (multi-line, as is) unless that would be ambiguous."""
    if '"""' in text or text.endswith('"'):
        return json.dumps(text)
    return f'"""{text}"""'


def modelfile_text(
    gguf_name: str,
    template: str | None,
    stops: list[str],
    *,
    system: str | None,
    parameters: dict[str, OllamaParameter],
) -> str:
    """The Modelfile that `ollama create -f` reads, beside the GGUF file."""
    lines = [f"FROM ./{gguf_name}"]
    if template is not None:
        lines.append(f"TEMPLATE {_quote(template)}")
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    for stop in stops:
        lines.append(f"PARAMETER stop {json.dumps(stop)}")
    for key, value in parameters.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {json.dumps(item) if isinstance(item, str) else item}")
    return "\n".join(lines) + "\n"
