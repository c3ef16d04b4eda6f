"""What a GRPO run's rewards need beyond the rows, fixed at submission: every row
scorable, the folder of each reward model named, and the page texts a cites_page
reward checks against (read from the knowledge base once, kept beside the run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat
from aift.training import rewards
from aift.training.schemas import RewardKind, RewardSpec, RowError

Page = tuple[str, int]
# (knowledge base, [(document, page)]) → texts found, and why the others are missing
PageLookup = Callable[[str, list[Page]], tuple[dict[Page, str], dict[Page, str]]]
PAGES_FILE = "reward_pages.json"


def refuse_rows(errors: list[RowError], split: str, dataset: str, what: str) -> None:
    """A clear error naming the first failing rows (all of them, up to 100, in details)."""
    if not errors:
        return
    shown = "; ".join(e.reason for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    raise InvalidInput(
        f"{what} {len(errors)} {split} row(s) of {dataset}: {shown}{more}.",
        details=[e.model_dump() for e in errors[:100]],
    )


def check_rows(
    specs: list[RewardSpec], splits: dict[str, list[dict[str, Any]]], dataset: str
) -> None:
    """Every row of every split can be scored by the declared rewards."""
    rewards.check_specs(specs)
    for split, rows in splits.items():
        refuse_rows(rewards.row_errors(specs, rows), split, dataset, "The rewards cannot score")


def reward_model_folders(specs: list[RewardSpec], resolver: ModelResolver) -> dict[str, str]:
    """The folder of each reward model a `model` reward names: a transformers model with a
    score head (trained here with objective reward), not a chat model."""
    folders: dict[str, str] = {}
    for spec in specs:
        if spec.kind != RewardKind.model or not spec.model:
            continue
        found = resolver.resolve(spec.model)
        config_file = Path(found.path) / "config.json"
        architectures = (
            json.loads(config_file.read_text()).get("architectures") or []
            if found.format == ModelFormat.hf and config_file.is_file()
            else []
        )
        if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
            raise InvalidInput(
                f"{found.name} is not a reward model: a model reward needs one trained with "
                "objective reward (a model with a score head)."
            )
        folders[spec.model] = found.path
    return folders


def page_texts(
    specs: list[RewardSpec],
    splits: dict[str, list[dict[str, Any]]],
    dataset: str,
    lookup: PageLookup | None,
) -> dict[str, str]:
    """The text of every page the rows name, keyed `document#page`, for the run's
    cites_page reward; a row whose page is missing from the knowledge base is an error."""
    wanted = [s for s in specs if s.kind == RewardKind.cites_page and s.knowledge_base]
    if not wanted:
        return {}
    if lookup is None:
        raise InvalidInput("A cites_page reward needs knowledge bases, which this server lacks.")
    if len({s.knowledge_base for s in wanted}) > 1:
        raise InvalidInput("cites_page rewards of one run check one knowledge base.")
    knowledge_base = str(wanted[0].knowledge_base)
    pages = sorted({(r["document"], int(r["page"])) for rows in splits.values() for r in rows})
    texts, problems = lookup(knowledge_base, pages)
    for split, rows in splits.items():
        errors = [
            RowError(row=number, reason=f"row {number}: {problems[key]}")
            for number, row in enumerate(rows, start=1)
            if (key := (row["document"], int(row["page"]))) in problems
        ]
        refuse_rows(errors, split, dataset, "The cites_page reward finds no page for")
    return {rewards.page_key(document, page): text for (document, page), text in texts.items()}


def write_pages(texts: dict[str, str], output: Path) -> str | None:
    """Keep the page texts beside the run (what resume reads); None when there are none."""
    if not texts:
        return None
    output.mkdir(parents=True, exist_ok=True)
    path = output / PAGES_FILE
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return str(path)
