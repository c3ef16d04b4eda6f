"""Sentence spans and citation attribution: markers decided by support, not by the model."""

from __future__ import annotations

from aift.rag.attribution import Passage, Scorer, attribute, quotes, source_sentences
from aift.rag.sentences import sentence_spans

SOURCES = [
    Passage(
        1,
        "The Varn river floods every April.\nIts delta hosts 40 heron colonies.\n\n"
        "Fishing is banned from May to June.",
        page_start=3,
        page_breaks=[70],  # the last paragraph is on page 4
    ),
    Passage(2, "Mount Ostrel is 2,310 metres high. Its summit hut opened in 1931.", 7),
    Passage(3, "서울의 인구는 약 940만 명이다. 한강이 도시를 가로지른다.", 1),
]


def scorer() -> Scorer:
    return Scorer(source_sentences(SOURCES), embedder=None)


def test_sentences_end_at_punctuation_and_blank_lines_not_at_layout_breaks() -> None:
    text = "First one\ncontinues here. Second!  \n\nThird without end"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "First one\ncontinues here.",
        "Second!",
        "Third without end",
    ]
    long = "\n".join(f"cell {n} of a table row" for n in range(40))
    assert all(b - a <= 400 for a, b in sentence_spans(long))
    assert [s.page for s in source_sentences(SOURCES[:1])] == [3, 3, 4]


def test_missing_markers_are_inserted_and_wrong_ones_replaced() -> None:
    answer = "Mount Ostrel is 2,310 metres high [1]. The Varn delta hosts 40 heron colonies."
    got = attribute(answer, scorer(), threshold=0.5)
    assert got.answer == (
        "Mount Ostrel is 2,310 metres high [2]. The Varn delta hosts 40 heron colonies [1]."
    )
    assert got.replaced == [1] and got.inserted == [2, 1] and got.kept == []
    support = got.supports[2].sentence
    assert SOURCES[1].text[support.start : support.end] == "Mount Ostrel is 2,310 metres high."
    assert got.supports[1].sentence.page == 3


def test_supported_markers_are_kept_and_unsupported_sentences_cite_nothing() -> None:
    answer = (
        "Fishing is banned from May to June [1]. I hope this helps [2]! 서울의 인구는 940만 명이다."
    )
    got = attribute(answer, scorer(), threshold=0.5)
    assert got.answer == (
        "Fishing is banned from May to June [1]. I hope this helps! 서울의 인구는 940만 명이다 [3]."
    )
    assert got.kept == [1] and got.replaced == [2] and got.inserted == [3]
    assert got.supports[1].sentence.page == 4  # the sentence's page, not the chunk's first


def test_a_sentence_that_only_restates_the_question_cites_nothing() -> None:
    question = "How high is Mount Ostrel?"
    got = attribute("How high is Mount Ostrel? It is 2,310 metres high.", scorer(), 0.4, question)
    assert got.answer == "How high is Mount Ostrel? It is 2,310 metres high [2]."
    assert (got.statements, got.supported, got.unsupported) == (1, 1, False)


def test_an_answer_the_sources_support_nowhere_is_unsupported() -> None:
    question = "What colour is the Zorblat reactor coolant?"
    invented = "The Zorblat reactor coolant is bright green. It glows at night."
    got = attribute(invented, scorer(), 0.35, question)
    assert (got.statements, got.supported) == (2, 0) and got.unsupported
    partly = attribute("Fishing is banned from May to June. It glows at night.", scorer(), 0.5)
    assert (partly.statements, partly.supported, partly.unsupported) == (2, 1, False)
    assert not attribute("", scorer(), 0.35).unsupported, "saying nothing claims nothing"


def test_quotes_are_the_sentences_that_answer_the_question() -> None:
    found = quotes("When did the summit hut on Mount Ostrel open?", scorer(), 2, 0.3)
    assert found[0].sentence.text == "Its summit hut opened in 1931."
    assert all(q.score >= 0.3 for q in found)
    assert quotes("quinquagenarian pelican", scorer(), 3, 0.3) == []


class Letters:
    """A tiny deterministic embedder: letter counts (enough to tell sentences apart)."""

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        return [[t.lower().count(c) + 0.01 for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts]


def test_a_question_word_few_sentences_hold_weighs_more_than_a_common_one() -> None:
    report = (
        "도림시 공공도서관 운영 보고서 2031. 도림시 공공도서관의 장서는 모두 284,000권이다. "
        "공공도서관 열람실은 평일에 운영한다. 관장 한서윤은 2030년 1월에 취임하였다."
    )
    scorer = Scorer(source_sentences([Passage(1, report, 1)]), None)
    (best, *_) = quotes("도서관 관장은 누구인가?", scorer, 3, 0.1)
    assert best.sentence.text.startswith("관장 한서윤은")


def test_embedding_similarity_joins_the_lexical_score() -> None:
    with_vectors = Scorer(source_sentences(SOURCES), embedder=Letters())
    ranked = with_vectors.rank(["The summit hut opened in 1931."])[0]
    assert ranked[0].sentence.text == "Its summit hut opened in 1931."
    assert ranked[0].semantic is not None and 0 <= ranked[0].score <= 1


def test_a_looping_generation_is_recognised() -> None:
    from aift.rag.answering import repeating

    loop = "The Satz 1.12 is a Reidemeister-Züge.\n\n"
    assert not repeating(loop * 2)
    assert repeating("Intro. " + loop * 3)
    assert repeating("So: " + "the cat " * 4)  # a short block, four times
    assert not repeating("So: " + "the cat " * 3)
    assert not repeating("| a | b |\\n|---|---|\\n| 1 | 2 |")
    assert not repeating("A normal answer that cites a source [1] and ends here.")


def test_excerpts_keep_the_best_sentence_and_its_neighbours() -> None:
    from aift.rag.answering import excerpt

    text = " ".join(f"Sentence number {n} says something." for n in range(30))
    best = text.index("Sentence number 12")
    end = text.index(".", best) + 1
    got = excerpt(text, (best, end), 120)
    assert "Sentence number 12 says" in got and len(got) <= 120 + 4
    assert "number 11" in got or "number 13" in got  # a neighbour
    assert got.startswith("… ") and got.endswith(" …")
    assert excerpt("Short.", None, 120) == "Short."
