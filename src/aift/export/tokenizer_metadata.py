"""The tokenizer and chat template of a transformers folder, as GGUF metadata.

Byte-level BPE vocabularies (SmolLM, Llama 3, Qwen 2) become llama.cpp's `gpt2`
tokenizer with the pre-tokenizer named from the tokenizer's own rules; SentencePiece
vocabularies (Llama 2, Mistral) its `llama` tokenizer. Added tokens keep their role:
special ones are control tokens (so `<|im_end|>` is one token and ends a turn), the
others user-defined. Whether BOS/EOS are added is read from what the tokenizer does.
The export job then checks that llama.cpp tokenizes probe texts exactly as transformers
does (`tokenization_mismatch`), so a wrong guess never ships.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput

# Texts whose tokens must agree between transformers and llama.cpp after export.
PROBE_TEXTS = (
    "Hello world! How are you today?",
    "In 2024 there were 12345 cats and 7 dogs.",
    "  leading spaces,\ttabs\nand\n\nnewlines   ",
    "Ünïcödé — 한국어 텍스트, 中文, emoji 🙂",
    "def f(x):\n    return x**2  # square",
)


def pre_tokenizer_name(tokenizer: dict[str, Any]) -> str:
    """llama.cpp's pre-tokenizer for a tokenizer.json's pre-tokenizer rules."""
    pre = tokenizer.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    patterns = [
        p["pattern"]["Regex"]
        for p in parts
        if p.get("type") == "Split" and "Regex" in (p.get("pattern") or {})
    ]
    byte_level = any(p.get("type") == "ByteLevel" for p in parts)
    digits = any(p.get("type") == "Digits" and p.get("individual_digits") for p in parts)
    if patterns:
        if r"\p{N}{1,3}" in patterns[0]:
            return "llama-bpe"
        if r"\p{L}+|\p{N}|" in patterns[0]:
            return "qwen2"
    if digits and byte_level:
        return "smollm"
    if byte_level:
        return "gpt-2"
    return "default"


def _load_tokenizer_json(tokenizer_dir: Path) -> dict[str, Any]:
    path = tokenizer_dir / "tokenizer.json"
    if not path.exists():
        raise InvalidInput(
            f"{tokenizer_dir} has no tokenizer.json; GGUF export needs the fast tokenizer."
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


def add_tokenizer(writer: Any, tokenizer_dir: Path, vocab_size: int) -> None:
    """Add tokens, types, merges or scores, special ids and the chat template."""
    import gguf

    data = _load_tokenizer_json(tokenizer_dir)
    model = data.get("model") or {}
    added = {int(t["id"]): t for t in data.get("added_tokens", [])}
    if model.get("type") == "BPE" and not model.get("byte_fallback"):
        tokens, types = _bpe_tokens(model["vocab"], added, vocab_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre_tokenizer_name(data))
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        merges = True
    else:
        pieces, scores, types = _sentencepiece_tokens(tokenizer_dir, added, vocab_size)
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(pieces)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        merges = False
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=merges, n_vocab=vocab_size)
    special.add_special_token = {}
    special.add_to_gguf(writer, quiet=True)
    add_bos, add_eos = _adds_special(tokenizer_dir, special.special_token_ids)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)


def _bpe_tokens(
    vocab: dict[str, int], added: dict[int, dict[str, Any]], vocab_size: int
) -> tuple[list[str], list[int]]:
    import gguf

    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(gguf.TokenType.UNUSED)] * vocab_size
    for text, index in vocab.items():
        if index < vocab_size:
            tokens[index], types[index] = text, int(gguf.TokenType.NORMAL)
    for index, token in added.items():
        if index >= vocab_size:
            raise InvalidInput(
                f"Token {token['content']!r} has id {index} beyond the model's vocabulary "
                f"({vocab_size}); resize the embeddings before exporting."
            )
        tokens[index] = token["content"]
        types[index] = int(
            gguf.TokenType.CONTROL if token.get("special") else gguf.TokenType.USER_DEFINED
        )
    return tokens, types


def _sentencepiece_tokens(
    tokenizer_dir: Path, added: dict[int, dict[str, Any]], vocab_size: int
) -> tuple[list[bytes], list[float], list[int]]:
    import gguf

    try:
        vocab = gguf.LlamaHfVocab(tokenizer_dir)
    except Exception as exc:  # noqa: BLE001 - any unreadable vocabulary is the user's to fix
        raise InvalidInput(
            f"GGUF export reads byte-level BPE or SentencePiece tokenizers; {tokenizer_dir}'s "
            f"could not be read as either ({exc})."
        ) from None
    tokens: list[bytes] = []
    scores: list[float] = []
    types: list[int] = []
    for text, score, kind in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))
    for index, token in added.items():
        if index < len(types) and token.get("special"):
            types[index] = int(gguf.TokenType.CONTROL)
    while len(tokens) < vocab_size:
        tokens.append(f"[PAD{len(tokens)}]".encode())
        scores.append(-1000.0)
        types.append(int(gguf.TokenType.UNUSED))
    return tokens[:vocab_size], scores[:vocab_size], types[:vocab_size]


def _adds_special(tokenizer_dir: Path, ids: dict[str, int]) -> tuple[bool, bool]:
    """Whether the tokenizer puts BOS before / EOS after a plain text by itself."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoded = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    add_bos = len(encoded) > len(plain) and "bos" in ids and encoded[0] == ids["bos"]
    add_eos = len(encoded) > len(plain) and "eos" in ids and encoded[-1] == ids["eos"]
    return add_bos, add_eos


def tokenization_mismatch(gguf_file: Path, tokenizer_dir: Path) -> str | None:
    """The first probe text llama.cpp tokenizes differently from transformers (None: all
    agree). Loads only the GGUF's vocabulary."""
    from aift.native.llamacpp_backend import ensure_backend

    ensure_backend()
    import llama_cpp
    from llama_cpp import _internals as internals
    from transformers import AutoTokenizer

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = internals.LlamaModel(path_model=str(gguf_file), params=params, verbose=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        for text in PROBE_TEXTS:
            ours = list(model.tokenize(text.encode("utf-8"), False, False))
            theirs = tokenizer(text, add_special_tokens=False)["input_ids"]
            if ours != theirs:
                return f"{text!r}: llama.cpp {ours[:12]} vs transformers {theirs[:12]}"
        return None
    finally:
        model.close()
