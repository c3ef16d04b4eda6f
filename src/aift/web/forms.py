"""HTML form fields derived from a pydantic schema, so a form cannot drift from its API.

The run-config form of the training page is built from `TrainingConfig` itself: each
field's type picks its control, its constraints become the input's min/max, its
description the hint, and `applies_when` in its JSON-schema extras hides it when it does
not apply (e.g. LoRA settings for full fine-tuning).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

Control = Literal["select", "checkbox", "number", "text", "json"]


@dataclass
class FormField:
    """One input of a generated form; `name` is the dotted path in the JSON body."""

    name: str
    label: str
    control: Control
    value_type: Literal["int", "float", "str", "bool", "list", "json"]
    value: Any = None
    hint: str | None = None
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    applies_when: dict[str, list[str]] | None = None
    advanced: bool = False

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def step(self) -> str:
        return "1" if self.value_type == "int" else "any"


def form_fields(
    model: type[BaseModel],
    *,
    choices: dict[str, list[tuple[str, str]]] | None = None,
    advanced: frozenset[str] = frozenset(),
    prefix: str = "",
    inherited_when: dict[str, list[str]] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> list[FormField]:
    """The form fields of `model`, nested models flattened with dotted names.

    `choices` turns a free-text field into a select (e.g. base models, datasets);
    `advanced` names the fields shown folded away; `exclude` those left out (sections a
    form does not offer, such as optional nested settings that switch a mode on).
    """
    choices = choices or {}
    fields: list[FormField] = []
    for name, info in model.model_fields.items():
        path = prefix + name
        if path in exclude:
            continue
        when = _applies_when(info) or inherited_when
        annotation = _without_none(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields += form_fields(
                annotation,
                choices=choices,
                advanced=advanced,
                prefix=path + ".",
                inherited_when=when,
            )
            continue
        fields.append(_field(path, info, annotation, choices.get(path), when, path in advanced))
    return fields


def _field(
    path: str,
    info: FieldInfo,
    annotation: Any,
    options: list[tuple[str, str]] | None,
    when: dict[str, list[str]] | None,
    advanced: bool,
) -> FormField:
    default = None if info.default is PydanticUndefined else info.default
    if default is None and info.default_factory is not None:
        default = info.get_default(call_default_factory=True)
    structured = json.dumps(to_jsonable_python(default)) if _is_structured(annotation) else None
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, list):
        default = ", ".join(map(str, default))
    label = info.title or path.rsplit(".", 1)[-1].replace("_", " ")  # a title tells twins apart
    common: dict[str, Any] = {
        "name": path,
        "label": label[0].upper() + label[1:],
        "value": default,
        "hint": info.description,
        "required": info.is_required(),
        "applies_when": when,
        "advanced": advanced,
    }
    if _is_structured(annotation):  # a list of objects, or an object: edited as JSON
        common["value"] = structured
        return FormField(control="json", value_type="json", **common)
    enum_options = _enum_options(annotation)
    if options is not None or enum_options:
        return FormField(
            control="select", value_type="str", options=options or enum_options, **common
        )
    if annotation is bool:
        return FormField(control="checkbox", value_type="bool", **common)
    if annotation in (int, float):
        low, high = _bounds(info)
        kind: Literal["int", "float"] = "int" if annotation is int else "float"
        return FormField(control="number", value_type=kind, minimum=low, maximum=high, **common)
    kind_text: Literal["str", "list"] = "list" if _allows_list(annotation) else "str"
    return FormField(control="text", value_type=kind_text, **common)


def _is_structured(annotation: Any) -> bool:
    """A field holding objects (a list of models, a dict) rather than one value."""
    if typing.get_origin(annotation) is dict or annotation is dict:
        return True
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (None,)
        return isinstance(item, type) and issubclass(item, BaseModel)
    return False


def _applies_when(info: FieldInfo) -> dict[str, list[str]] | None:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("applies_when"), dict):
        return typing.cast(dict[str, list[str]], extra["applies_when"])
    return None


def _without_none(annotation: Any) -> Any:
    """`int | None` → int; other unions are returned as they are."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _enum_options(annotation: Any) -> list[tuple[str, str]]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [(str(m.value), str(m.value)) for m in annotation]
    if typing.get_origin(annotation) is Literal:
        return [(str(v), str(v)) for v in typing.get_args(annotation)]
    return []


def _allows_list(annotation: Any) -> bool:
    return any(typing.get_origin(a) is list for a in typing.get_args(annotation))


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low: object = None
    high: object = None
    for rule in info.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            low = rule.gt
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.Lt):
            high = rule.lt
    return _number(low), _number(high)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
