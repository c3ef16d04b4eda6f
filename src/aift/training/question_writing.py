"""Question–answer rows written from a document's passages by a served model, each kept
only where the passage supports its answer.

Small models write poor questions about a whole passage, but fair ones about one sentence
and a given answer ("answer-aware" question writing). So each sentence of a passage gives
candidate answers — names, dates, numbers with their unit, or the sentence itself — and
the model writes, for each, a question that the answer answers. A question that is
generic (no word of its sentence) or gives its answer away is dropped.

The answer is then either that span (extractive) or the model's own answer with the
passage in front of it (generated). Either way attribution scores it against the passage
(`rag.attribution`), and a number the passage does not hold sinks it: only a supported
answer is kept. For a preference pair the model also answers without the passage; where
that answer states what the passage does not support, it is the rejected reply.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aift.rag.attribution import Passage, best_support
from aift.rag.keywords import terms
from aift.rag.schemas import SourcePassage
from aift.rag.sentences import is_row, sentence_spans
from aift.training.schemas import DocumentDatasetRequest

# (messages, most new tokens) → the model's reply, greedy
Generate = Callable[[list[dict[str, str]], int], str]

QUESTION_TOKENS = 48
ANSWER_TOKENS = 48
MIN_WORDS = 4
MAX_QUESTION_CHARS = 300

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_NUMBER = re.compile(
    r"(?<![\w.])\d[\d,.:]*(?<![,.:])(?:%|[\uac00-\ud7a3](?=[\s.,;:!?)]|[\uac00-\ud7a3]|$))?"
    r"(?:\s(?:million|billion|thousand|hundred|percent|per cent|minutes|hours|days|weeks|"
    r"months|years|kilometres|kilometers|km|metres|meters|litres|liters|kg|tonnes|mg/L|"
    r"people|residents|members|staff|euros|dollars))?"
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"(?:\d{{1,2}}\s)?(?:{_MONTHS})(?:\s\d{{1,2}},?)?\s\d{{4}}")
_KOREAN_DATE = re.compile(r"(?:\d{4}년\s?)?\d{1,2}월(?:\s?\d{1,2}일)?")
_KOREAN_QUESTION = ("가", "까", "나", "니", "지", "요")
_NAME = re.compile(r"[A-Z][\w'’-]+(?:\s+(?:of\s+|de\s+|van\s+)?[A-Z][\w'’-]+)+")
_LEADING = {"The", "A", "An", "In", "On", "At", "By", "For", "From", "To", "Each", "Every",
            "This", "That", "These", "Those", "All", "Our", "Its", "His", "Her", "Their",
            "Chief", "Mr", "Ms", "Dr"}  # fmt: skip
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•]|q(?:uestion)?\s*\d*[:.)])\s*", re.IGNORECASE)

# worked examples, one per phrasing: (sentence, answer, question)
EXAMPLES = {
    "en": (
        ("The library opens at 8 a.m. on weekdays.", "8 a.m.",
         "When does the library open on weekdays?"),
        ("Maria Olsen has chaired the board since 2019.", "Maria Olsen", "Who chairs the board?"),
        ("The bridge is 340 metres long.", "340 metres", "How long is the bridge?"),
    ),
    "ko": (
        ("도서관은 평일 오전 8시에 문을 연다.", "오전 8시", "도서관은 평일 몇 시에 문을 여는가?"),
        ("이사회 의장은 2019년부터 김민정이 맡고 있다.", "김민정", "이사회 의장은 누구인가?"),
        ("그 다리의 길이는 340미터이다.", "340미터", "그 다리의 길이는 얼마인가?"),
    ),
}  # fmt: skip
ASK = {
    "en": ("Write a question that this sentence answers.", "Sentence", "Answer"),
    "ko": ("이 문장이 답하는 질문을 하나 쓰세요.", "문장", "답"),
}
ANSWER_FROM_PASSAGE = {
    "en": ("Answer from the passage in a few words.", "Passage", "Question"),
    "ko": ("지문에 근거하여 짧게 답하세요.", "지문", "질문"),
}


@dataclass
class WrittenRow:
    """A question and its supported answer, with where the passage stands."""

    chunk_id: str
    question: str
    answer: str
    support: float
    document_id: str
    document: str
    page: int
    section: str | None
    passage: str
    rejected_answer: str | None = None


@dataclass
class WritingCounts:
    """What happened to the candidates: the report of a dataset written from documents."""

    sentences: int = 0
    questions: int = 0  # written by the model and usable
    unusable_questions: int = 0  # generic, giving the answer away, or not a question
    answers: int = 0  # answers checked against their passage
    supported: int = 0  # of those, the ones the passage supports
    duplicates: int = 0
    pairs: int = 0  # preference pairs found (an unsupported closed-book answer)
    kept: int = 0

    def as_dict(self) -> dict[str, float | int]:
        share = self.supported / self.answers if self.answers else 0.0
        return {**self.__dict__, "supported_share": round(share, 4)}


def language(text: str) -> str:
    """'ko' for text with Hangul, otherwise 'en' (the prompts' two languages)."""
    return "ko" if _HANGUL.search(text) else "en"


def answer_spans(sentence: str, limit: int) -> list[str]:
    """Up to `limit` short answers a question about this sentence could have: names,
    dates, then numbers with their unit; none for a sentence without them."""
    found: list[str] = []
    for pattern in (_NAME, _DATE, _KOREAN_DATE, _NUMBER):
        for match in pattern.finditer(sentence):
            span = match.group(0).strip()
            if pattern is _NAME:
                words = span.split()
                while words and words[0] in _LEADING:
                    words = words[1:]
                span = " ".join(words) if len(words) > 1 else ""
            if span and not any(span in other or other in span for other in found):
                found.append(span)
    return found[:limit]


# words that say nothing of a sentence's content (and a question's own vocabulary)
FUNCTION_WORDS = frozenset(
    "the and for are was were this that these those what which who whom whose when where "
    "why how with from into its his her their has have had does did not but all any each "
    "every there than then them they you your our can will would should could about also "
    "answer question sentence".split()
)


def content_terms(text: str) -> set[str]:
    """Lower-cased words of 3+ characters that carry content, and every number or
    Hangul word."""
    return {
        t
        for t in terms(text)
        if (len(t) >= 3 and t not in FUNCTION_WORDS) or t.isdigit() or _HANGUL.search(t)
    }


def clean_question(reply: str, sentence: str, span: str | None) -> str | None:
    """The model's question tidied (first line, numbering and quotes off), or None when
    it is no usable question: empty, too long, not about the sentence, or holding its
    own answer."""
    line = next((ln for ln in reply.strip().splitlines() if ln.strip()), "")
    question = _NUMBERING.sub("", line).strip().strip("\"“”'").strip()
    if not question or len(question) > MAX_QUESTION_CHARS:
        return None
    if not question.endswith(("?", "？")):
        if not question.rstrip(".").endswith(_KOREAN_QUESTION):
            return None
        question = question.rstrip(".") + "?"
    if not content_terms(question) & content_terms(sentence):
        return None  # generic: "What is the answer to this question?"
    if span and span.casefold() in question.casefold():
        return None  # gives its answer away
    return question


def write_question(
    generate: Generate, sentence: str, span: str | None, phrasing: int = 0
) -> str | None:
    """The model's question for the sentence (and the answer it must have), tidied;
    each `phrasing` shows the model another worked example, so asks it otherwise."""
    lang = language(sentence)
    instruction, sentence_label, answer_label = ASK[lang]
    example, example_answer, example_question = EXAMPLES[lang][phrasing % len(EXAMPLES[lang])]

    def ask(text: str, answer: str | None) -> str:
        shown = f"\n{answer_label}: {answer}" if answer else ""
        return f"{instruction}\n{sentence_label}: {text}{shown}"

    messages = [
        {"role": "user", "content": ask(example, example_answer if span else None)},
        {"role": "assistant", "content": example_question},
        {"role": "user", "content": ask(sentence, span)},
    ]
    return clean_question(generate(messages, QUESTION_TOKENS), sentence, span)


def passage_answer(generate: Generate, passage: str, question: str) -> str:
    """The model's short answer with the passage in front of it."""
    instruction, passage_label, question_label = ANSWER_FROM_PASSAGE[language(question)]
    messages = [
        {"role": "system", "content": instruction},
        {"role": "user", "content": f"{passage_label}:\n{passage}\n\n{question_label}: {question}"},
    ]
    return generate(messages, ANSWER_TOKENS).strip()


def closed_book_answer(generate: Generate, question: str) -> str:
    """The model's answer with nothing in front of it (a candidate rejected reply)."""
    return generate([{"role": "user", "content": question}], ANSWER_TOKENS).strip()


def invented_numbers(answer: str, passage: str) -> set[str]:
    """Numbers the answer states that the passage does not hold."""
    said = {t for t in terms(answer) if t.isdigit()}
    return said - {t for t in terms(passage) if t.isdigit()}


def support(answer: str, passage: str) -> float:
    """How well the passage supports the answer, 0–1: attribution's mean best score of
    the answer's sentences, and 0 for an answer with a number the passage lacks."""
    if not answer.strip() or invented_numbers(answer, passage):
        return 0.0
    # attribution leaves out fragments of 3 characters or fewer; an answer such as "18"
    # is scored as a sentence of its own
    scores = best_support(answer, passage) or best_support(f"{answer} .", passage)
    return min(1.0, sum(scores) / len(scores)) if scores else 0.0


@dataclass
class Deduplicator:
    """Drops a question already written (after normalising case, spaces and
    punctuation) or one asking nearly the same words for the same answer."""

    seen: dict[str, list[set[str]]] = field(default_factory=dict)  # answer → question terms
    exact: set[str] = field(default_factory=set)

    def is_new(self, question: str, answer: str) -> bool:
        key = " ".join(terms(question))
        words = content_terms(question)
        earlier = self.seen.setdefault(" ".join(terms(answer)), [])
        if key in self.exact or any(_jaccard(words, other) >= 0.8 for other in earlier):
            return False
        self.exact.add(key)
        earlier.append(words)
        return True


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _sentences(text: str) -> Iterator[tuple[int, str]]:
    """(offset, sentence) of the passage's sentences worth a question: not table rows
    or headings, with enough words (Korean counts characters)."""
    for start, end in sentence_spans(text):
        sentence = text[start:end].strip()
        if is_row(sentence):
            continue
        sentence = sentence.lstrip("#").strip()
        enough = (
            len(sentence) >= 12
            if language(sentence) == "ko"
            else (len(sentence.split()) >= MIN_WORDS)
        )
        if enough:
            yield start, sentence


def rows_of_passage(
    source: SourcePassage,
    generate: Generate,
    options: DocumentDatasetRequest,
    dedupe: Deduplicator,
    counts: WritingCounts,
) -> Iterator[WrittenRow]:
    """The supported rows written from one passage (see the module docstring)."""
    located = Passage(1, source.text, source.page_start, source.page_breaks)
    for offset, sentence in _sentences(source.text):
        counts.sentences += 1
        spans: list[str | None] = list(answer_spans(sentence, options.questions_per_sentence))
        for span, phrasing in itertools.product(spans or [None], range(options.phrasings)):
            question = write_question(generate, sentence, span, phrasing)
            if question is None:
                counts.unusable_questions += 1
                continue
            counts.questions += 1
            row = _answered(source, generate, options, question, (sentence, span), counts)
            if row is None:
                continue
            if not dedupe.is_new(row.question, row.answer):
                counts.duplicates += 1
                continue
            row.page = located.page_of(offset)
            counts.kept += 1
            yield row


def _answered(
    source: SourcePassage,
    generate: Generate,
    options: DocumentDatasetRequest,
    question: str,
    asked: tuple[str, str | None],
    counts: WritingCounts,
) -> WrittenRow | None:
    """The row for a question about `asked` (its sentence and span), or None when its
    answer is unsupported (or, for a preference dataset, no unsupported closed-book
    answer was found). A generated answer must also say something of that sentence
    beyond the question's words: a supported answer to another question is no answer."""
    sentence, span = asked
    answer = span or sentence
    if options.answers == "generated":
        answer = passage_answer(generate, source.text, question)
    counts.answers += 1
    score = support(answer, source.text)
    on_topic = (content_terms(answer) & content_terms(sentence)) - content_terms(question)
    if score < options.support_threshold or not on_topic:
        return None
    counts.supported += 1
    rejected = None
    if options.preference_pairs:
        rejected = closed_book_answer(generate, question)
        said = " ".join(terms(answer))
        if not rejected or said in " ".join(terms(rejected)):
            return None
        if support(rejected, source.text) >= options.support_threshold:
            return None
        counts.pairs += 1
    return WrittenRow(
        chunk_id=source.chunk_id,
        question=question,
        answer=answer,
        support=round(score, 4),
        document_id=source.document_id,
        document=source.document,
        page=source.page_start,
        section=source.section,
        passage=source.text,
        rejected_answer=rejected,
    )
