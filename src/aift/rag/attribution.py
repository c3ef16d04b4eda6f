"""Which source sentences support an answer, decided after generation by similarity, not
by the model's obedience.

Each answer sentence is compared with every sentence of the sources it was given:
lexically (how much of the answer sentence's content words the source sentence holds)
and, when an embedder is given, semantically (cosine of their embeddings, scaled within
the candidates). A sentence whose best support reaches the threshold cites that source;
markers the model wrote are kept only where the check supports them, wrong ones are
replaced, missing ones inserted (as RAGFlow does). Each citation carries the supporting
sentence's span in its chunk and its page.

The same scoring, with the question in place of an answer sentence, picks the supporting
quotes: the source sentences that best answer the question.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import snowballstemmer

from aift.rag import keywords
from aift.rag.citations import MARKER, marker_numbers
from aift.rag.sentences import is_row, sentence_spans, table_header

LEXICAL_WEIGHT = 0.6  # the rest is the scaled embedding similarity


class SentenceEmbedder(Protocol):
    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]: ...


@dataclass
class Passage:
    """A numbered source as attribution sees it."""

    number: int
    text: str
    page_start: int
    page_breaks: list[int] = field(default_factory=list)  # offsets where later pages begin

    def page_of(self, offset: int) -> int:
        return self.page_start + bisect.bisect_right(self.page_breaks, offset)


@dataclass
class SourceSentence:
    number: int  # the source's number
    start: int  # span in the source's text
    end: int
    text: str
    page: int
    terms: frozenset[str]


@dataclass
class Support:
    """The best source sentence for an answer sentence (or the question)."""

    sentence: SourceSentence
    score: float
    lexical: float
    semantic: float | None


@dataclass
class AttributedAnswer:
    answer: str  # markers corrected and inserted
    supports: dict[int, Support]  # source number → its best supporting sentence
    kept: list[int]  # the model's own markers the check confirmed
    replaced: list[int]  # the model's markers it removed (unsupported)
    inserted: list[int]  # markers it added
    statements: int = 0  # sentences that claim something (not a restated question)
    supported: int = 0  # of those, the ones a source sentence supports

    @property
    def unsupported(self) -> bool:
        """The answer states things and the sources support none of them: it comes from
        the model's own knowledge (or its imagination), not from the knowledge base."""
        return self.statements > 0 and self.supported == 0


def source_sentences(passages: Sequence[Passage]) -> list[SourceSentence]:
    """Every sentence of every source, with its page and terms."""
    out = []
    for passage in passages:
        for start, end in sentence_spans(passage.text):
            text = passage.text[start:end]
            header = table_header(passage.text, start) if is_row(text) else None
            if header is not None:  # a row says what its cells are only under its header
                text = f"{header}\n{text}"
            out.append(
                SourceSentence(
                    passage.number, start, end, text, passage.page_of(start), _content(text)
                )
            )
    return out


def _content(text: str) -> frozenset[str]:
    """Content terms: words of 3+ characters (alphabetic ones stemmed by Snowball's
    English stemmer), numbers, CJK words and bigrams."""
    out = set()
    for term in keywords.terms(text):
        if ord(term[0]) > 0x2E80 or term.isdigit():
            out.add(term)
        elif len(term) >= 3:
            out.add(_stem(term) if term.isalpha() else term)
    return frozenset(out)


_ENGLISH = snowballstemmer.stemmer("english")
_ENGLISH_LOCK = threading.Lock()  # a Snowball stemmer keeps its word in itself


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Snowball's English stem of a lower-case word (opened ~ open, colonies ~ colony);
    other Latin-script languages keep a few of their inflections apart."""
    with _ENGLISH_LOCK:
        return str(_ENGLISH.stemWord(word))


def lexical(
    claim: frozenset[str], sentence: frozenset[str], weights: dict[str, float] | None = None
) -> float:
    """Share of the claim's content terms the sentence holds (weighted when `weights`
    are given)."""
    if not claim:
        return 0.0
    if weights is None:
        return len(claim & sentence) / len(claim)
    total = sum(weights[term] for term in claim)
    return sum(weights[term] for term in claim & sentence) / total


def rarity(sentences: Sequence[SourceSentence], terms: frozenset[str]) -> dict[str, float]:
    """IDF (BM25's) of each term among the source sentences: a question's word that one
    sentence holds tells more than one most of them hold ("관장" against "도서관" in a
    library's report)."""
    count = len({s.text for s in sentences})
    held = {term: len({s.text for s in sentences if term in s.terms}) for term in terms}
    return {
        term: float(np.log(1 + (count - held[term] + 0.5) / (held[term] + 0.5))) for term in terms
    }


class Scorer:
    """Scores texts against the source sentences; embeds each sentence at most once."""

    def __init__(self, sentences: list[SourceSentence], embedder: SentenceEmbedder | None) -> None:
        self.sentences = sentences
        self.embedder = embedder
        self._vectors: np.ndarray | None = None

    def _sentence_vectors(self) -> np.ndarray | None:
        if self.embedder is None or not self.sentences:
            return None
        if self._vectors is None:
            self._vectors = _unit(self.embedder.embed([s.text for s in self.sentences]))
        return self._vectors

    def rank(self, texts: list[str], *, as_query: bool = False) -> list[list[Support]]:
        """For each text, every source sentence as a Support, best first."""
        vectors = self._sentence_vectors()
        queries = (
            _unit(self.embedder.embed(texts, is_query=as_query))
            if vectors is not None and self.embedder is not None and texts
            else None
        )
        known = frozenset().union(*(s.terms for s in self.sentences)) if as_query else None
        out = []
        for row, text in enumerate(texts):
            claim = _content(text)
            weights = None
            if known is not None:  # a question's words no source uses cannot tell them apart
                claim = claim & known
                weights = rarity(self.sentences, claim)
            cosines = (
                vectors @ queries[row] if vectors is not None and queries is not None else None
            )
            scaled = _scaled(cosines) if cosines is not None else None
            supports = []
            for k, sentence in enumerate(self.sentences):
                lex = lexical(claim, sentence.terms, weights)
                if scaled is None:
                    score = lex
                else:
                    score = LEXICAL_WEIGHT * lex + (1 - LEXICAL_WEIGHT) * float(scaled[k])
                supports.append(
                    Support(
                        sentence, score, lex, float(cosines[k]) if cosines is not None else None
                    )
                )
            supports.sort(key=lambda s: -s.score)
            out.append(supports)
        return out


def _unit(vectors: list[list[float]]) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-9)


def _scaled(cosines: np.ndarray) -> np.ndarray:
    """Cosines mapped to 0..1 from the candidates' median (what an unrelated sentence
    scores with this model: e5's cosines sit in 0.7–1.0, others' lower) up to 1."""
    typical = float(np.median(cosines))
    return np.clip((cosines - typical) / max(1.0 - typical, 1e-6), 0.0, 1.0)


def attribute(
    answer: str, scorer: Scorer, threshold: float, question: str | None = None
) -> AttributedAnswer:
    """The answer with each sentence's [n] decided by its support (see module docstring).
    With the `question`, a sentence that only restates it (no content word of its own)
    cites nothing: there is no claim to support."""
    asked = _content(question) if question else frozenset()
    spans = sentence_spans(answer)
    bare = [MARKER.sub("", answer[a:b]).strip() for a, b in spans]
    ranked = scorer.rank(bare)
    pieces, last = [], 0
    supports: dict[int, Support] = {}
    kept: list[int] = []
    replaced: list[int] = []
    inserted: list[int] = []
    statements = supported = 0
    for (start, end), text, candidates in zip(spans, bare, ranked, strict=True):
        pieces.append(answer[last:start])
        last = end
        written = [n for m in MARKER.finditer(answer[start:end]) for n in marker_numbers(m)]
        claims = not question or bool(_content(text) - asked)
        statements += int(claims and len(text) > 3)
        best = (
            candidates[0]
            if candidates and candidates[0].score >= threshold and len(text) > 3 and claims
            else None
        )
        numbers: list[int] = []
        if best is not None:
            # the model's markers that name a source supporting this sentence nearly as well
            by_source: dict[int, Support] = {}
            for support in candidates:
                by_source.setdefault(support.sentence.number, support)
            for n in written:
                found = by_source.get(n)
                if found is not None and found.score >= max(threshold, best.score - 0.15):
                    if n not in numbers:
                        numbers.append(n)
                        kept.append(n)
                        _keep_best(supports, n, found)
                elif n not in replaced:
                    replaced.append(n)
            if not numbers:
                numbers = [best.sentence.number]
                inserted.append(best.sentence.number)
                _keep_best(supports, best.sentence.number, best)
        else:
            replaced.extend(n for n in written if n not in replaced)
        sentence = MARKER.sub("", answer[start:end]).rstrip()
        supported += int(bool(numbers))
        if numbers:
            marks = "".join(f"[{n}]" for n in numbers)
            sentence = _before_final_punctuation(sentence, marks)
        pieces.append(sentence)
    pieces.append(MARKER.sub("", answer[last:]))
    return AttributedAnswer(
        "".join(pieces).strip(), supports, kept, replaced, inserted, statements, supported
    )


def _keep_best(supports: dict[int, Support], number: int, support: Support) -> None:
    if number not in supports or supports[number].score < support.score:
        supports[number] = support


def _before_final_punctuation(sentence: str, marks: str) -> str:
    """'The sky is blue.' + [1] → 'The sky is blue [1].'"""
    if sentence and sentence[-1] in ".!?。！？":
        return f"{sentence[:-1].rstrip()} {marks}{sentence[-1]}"
    return f"{sentence} {marks}"


def quotes(question: str, scorer: Scorer, limit: int, threshold: float) -> list[Support]:
    """The source sentences that best answer the question, at most `limit`, best first,
    each at least `threshold`."""
    ranked = scorer.rank([question], as_query=True)[0]
    return [s for s in ranked[:limit] if s.score >= threshold]


def supported_share(
    answer: str, source: str, threshold: float, embedder: SentenceEmbedder | None = None
) -> float:
    """The share of the answer's sentences (citation markers ignored) that some sentence
    of `source` supports at `threshold`: 1.0 when the source backs every statement, 0.0
    for an empty answer. GRPO's cites_page reward: would the answer cite this page."""
    scores = best_support(answer, source, embedder)
    return sum(1 for s in scores if s >= threshold) / len(scores) if scores else 0.0


def best_support(answer: str, source: str, embedder: SentenceEmbedder | None = None) -> list[float]:
    """For each sentence of the answer (citation markers ignored, fragments of 3
    characters or fewer left out), the score of the source sentence supporting it best."""
    spans = sentence_spans(answer)
    texts = [MARKER.sub("", answer[a:b]).strip() for a, b in spans]
    texts = [t for t in texts if len(t) > 3]
    if not texts:
        return []
    scorer = Scorer(source_sentences([Passage(1, source, 1)]), embedder)
    return [c[0].score if c else 0.0 for c in scorer.rank(texts)]
