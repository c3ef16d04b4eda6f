"""The Modelfile TEMPLATE: measured from a Jinja chat template, written as a Go template,
and rendering system/user/assistant/multi-turn conversations exactly as the original."""

from __future__ import annotations

import jinja2
import pytest

from aift.export.gotemplate import TemplateError, render
from aift.export.modelfile import (
    PROBE_CONVERSATIONS,
    check_template,
    go_template,
    measure_template,
    modelfile_text,
    ollama_view,
)

CHATML_WITH_DEFAULT = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
ZEPHYR = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] "
    "+ eos_token + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}"
    "{% endif %}"
)
# Mistral-style: the system prompt is glued into the first user turn.
MISTRAL_MERGED_SYSTEM = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (messages[0]['content'] + '\n\n' if messages[0]['role'] == 'system' "
    "and loop.index0 == 1 else '') + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)


def jinja_renderer(source: str, bos: str = "<s>", eos: str = "</s>"):  # noqa: ANN201
    template = jinja2.Environment().from_string(source)

    def render_chat(messages: list[dict[str, str]], generation: bool) -> str:
        return template.render(
            messages=messages, add_generation_prompt=generation, bos_token=bos, eos_token=eos
        )

    return render_chat


@pytest.mark.parametrize(
    ("source", "bos", "runner_adds_bos"),
    [
        (CHATML_WITH_DEFAULT, None, False),
        (LLAMA3, "<|begin_of_text|>", True),
        (LLAMA3, None, False),
        (ZEPHYR, None, False),
    ],
    ids=["chatml+default-system", "llama3-bos-added-by-runner", "llama3-bos-in-template", "zephyr"],
)
def test_the_go_template_renders_every_probe_conversation_as_the_chat_template(
    source: str, bos: str | None, runner_adds_bos: bool
) -> None:
    jinja = jinja_renderer(source, bos="<|begin_of_text|>")
    shape = measure_template(jinja, bos)
    assert bool(shape.head) == runner_adds_bos
    template = go_template(shape, include_head=not runner_adds_bos)
    check = check_template(template, jinja, prefix=shape.head)
    assert check.passed and check.cases == len(PROBE_CONVERSATIONS), check.failure
    assert bool(check.note) == ("trim" in source)
    for _, messages in PROBE_CONVERSATIONS:
        if "trim" in source:
            messages = [{**m, "content": m["content"].strip()} for m in messages]
        expected = jinja(messages, True)
        assert shape.head + render(template, ollama_view(messages)) == expected


def test_a_template_that_is_not_per_role_turns_is_reported_not_shipped() -> None:
    from aift.export.modelfile import TemplateShapeError

    jinja = jinja_renderer(MISTRAL_MERGED_SYSTEM)
    try:
        shape = measure_template(jinja, None)
    except TemplateShapeError:
        return  # refused while measuring: fine
    check = check_template(go_template(shape, include_head=True), jinja)
    assert not check.passed and check.failure


def test_the_modelfile_carries_template_stops_system_and_parameters() -> None:
    text = modelfile_text(
        "m.q4_k_m.gguf",
        "{{ range .Messages }}{{ .Content }}{{ end }}",
        ["<|im_end|>"],
        system='Say "hi"',
        parameters={"temperature": 0.2, "num_ctx": 4096, "stop": ["END", "STOP"]},
    )
    assert text.splitlines() == [
        "FROM ./m.q4_k_m.gguf",
        'TEMPLATE """{{ range .Messages }}{{ .Content }}{{ end }}"""',
        'SYSTEM "Say \\"hi\\""',  # a closing quote would end a triple-quoted block early
        'PARAMETER stop "<|im_end|>"',
        "PARAMETER temperature 0.2",
        "PARAMETER num_ctx 4096",
        'PARAMETER stop "END"',
        'PARAMETER stop "STOP"',
    ]


def test_the_go_renderer_follows_go_semantics_on_an_ollama_style_template() -> None:
    template = (
        "{{- if .System }}<|system|>{{ .System }}\n{{ end -}}\n"
        "{{- range $i, $m := .Messages }}{{ $last := 0 }}"
        '{{- if eq $m.Role "user" }}U:{{ $m.Content }}\n'
        '{{- else if eq .Role "assistant" }}A:{{ .Content }}\n'
        "{{- else }}?{{ end }}{{ end }}"
        "{{ if and .Messages (gt (len .Messages) 1) }}[{{ len .Messages }}]{{ end }}"
        "{{ with $.Missing }}never{{ else }}none{{ end }}"
    )
    data = {
        "System": "sys",
        "Messages": [
            {"Role": "user", "Content": "hi"},
            {"Role": "assistant", "Content": "yo"},
            {"Role": "tool", "Content": "x"},
        ],
    }
    with pytest.raises(TemplateError):  # `:=` outside range is not implemented: an error
        render(template, data)
    template = template.replace("{{ $last := 0 }}", "")
    # `{{-` eats the newline before it, as Go does
    assert render(template, data) == "<|system|>sys\nU:hiA:yo?[3]none"
    assert render("{{ (index .Messages 1).Content }}", data) == "yo"
    with pytest.raises(TemplateError):  # pipes are not implemented: an error, not a guess
        render('{{ .System | printf "%s" }}', data)
    with pytest.raises(TemplateError):
        render('{{ template "x" }}', data)
    with pytest.raises(TemplateError):
        render("{{ if .System }}unclosed", data)
