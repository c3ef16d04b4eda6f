"""Keyword (BM25) vectors that work for Korean, Chinese, Japanese and Latin scripts alike.

Words are Unicode word runs, case-folded and NFKC-normalised. Runs that contain Hangul,
CJK ideographs or kana also yield their character bigrams, so Korean particles
(서울에서 → 서울) and unsegmented Chinese/Japanese still match. Each term is hashed to a
stable 31-bit index. A chunk's vector holds the BM25 term-frequency part; Qdrant applies
the IDF part at query time (sparse vector with the IDF modifier), so the index never has
to be rebuilt when documents come and go.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

K1 = 1.2
B = 0.75
AVERAGE_TOKENS = 256  # fixed length normaliser (Qdrant keeps no corpus statistics)

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


def terms(text: str) -> list[str]:
    """The keyword terms of a text, in order (repeats kept)."""
    out: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        out.append(word)
        if _CJK.search(word) and len(word) > 2:
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
    return out


def term_index(term: str) -> int:
    """A stable index for a term (same in every process and version)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big") >> 1


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency weights of a chunk, as sparse (indices, values)."""
    counts = Counter(term_index(t) for t in terms(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVERAGE_TOKENS)
    indices = sorted(counts)
    return indices, [counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices]


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Each distinct query term once; Qdrant multiplies in the IDF."""
    indices = sorted({term_index(t) for t in terms(text)})
    return indices, [1.0] * len(indices)
