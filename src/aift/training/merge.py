"""Merging an adapter into its base: a new full model, registered as a fine-tune.

The weight work itself (streamed LoRA merge, peft's merge for DoRA) is
`aift.weights.lora`; this module stages the result, copies the tokenizer files and
registers the merged model. The `training.merge` job (`aift.tasks.training`) calls it.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from aift.models.registry import ModelRegistry
from aift.training.schemas import MergeJobConfig, MergeRequest
from aift.weights.lora import COPIED, merge_streaming, merge_with_peft
from aift.work.actor import current_actor
from aift.work.control import Work


def merge_adapter(ctx: Work, config: MergeJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Merge an adapter into its base."""
    from aift.models.schemas import ModelKind, ModelSource

    base_dir = models.resolver.transformers_dir(config.base)
    adapter_dir, out_dir = Path(config.adapter_dir), Path(config.output_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    ctx.progress(0.1, "merging", force=True)
    dora = json.loads((adapter_dir / "adapter_config.json").read_text()).get("use_dora")
    if dora:
        merge_with_peft(base_dir, adapter_dir, staging)
    else:
        merge_streaming(base_dir, adapter_dir, staging)
    for name in COPIED:
        source = adapter_dir / name if (adapter_dir / name).exists() else base_dir / name
        if source.exists() and not (staging / name).exists():
            shutil.copy(source, staging / name)
    staging.replace(out_dir)
    info = models.register(
        out_dir.name,
        out_dir,
        source=ModelSource.workspace,
        owner=current_actor.get().user_id,
        kind=ModelKind.finetuned,
        extra={"merged_from": config.adapter, "base": config.base.name},
    )
    return {
        "model": info.name,
        "output_dir": str(out_dir),
        "method": "peft" if dora else "streaming",
    }


def output_for(workspace_outputs: Path, request: MergeRequest) -> Path:
    """The output folder of a merge: its name (or the adapter's) and the time."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    from aift.workspace import safe_name

    return workspace_outputs / f"merged_{safe_name(request.name or request.adapter)}_{stamp}"
