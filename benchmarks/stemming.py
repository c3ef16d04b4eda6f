"""Which stemmer the citation check uses: Snowball's English stemmer (snowballstemmer,
the kept library) against the suffix rules aift had before, in the same run.

The stemmer only decides which words of a question or an answer sentence count as the
same as a source sentence's (`aift.rag.attribution`), so it is measured where it acts,
on the shared SQuAD sample (English; Korean words are not stemmed):

- evidence: each answerable question ranks its paragraph's sentences by the lexical
  support score (the question's rarity-weighted terms); a hit is the sentence holding
  the answer at rank 1, and among the top 3 (what `generate` mode hands the model);
- claims: each answer written as a claim ("<question words> <answer>") ranks the
  paragraph's sentences as the citation check does for an answer sentence; a hit is the
  answer's sentence at rank 1.

Lexical scores only (no embedder), so the figures isolate the stemmer.

Run: .venv/bin/python benchmarks/stemming.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from aift.rag import attribution  # noqa: E402
from aift.rag.attribution import Passage, Scorer, source_sentences  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json"
_SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))


def suffix_rules(word: str) -> str:
    """The stemmer aift used before: five suffix rules, then the first 7 letters."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    return word[:7]


def _holds(support: attribution.Support, offset: int) -> bool:
    """The supporting sentence spans the answer's first character."""
    return support.sentence.start <= offset < support.sentence.end


def measure(stem: Callable[[str], str], rows: list[tuple[str, str, int, str]]) -> dict:
    """Evidence hit@1, hit@3 and claim hit@1 with `stem` as the attribution's stemmer."""
    attribution._stem = stem  # the module's stemmer, swapped for this measurement
    hits1 = hits3 = claims = 0
    started = time.perf_counter()
    for context, question, start, answer in rows:
        sentences = source_sentences([Passage(number=1, text=context, page_start=1)])
        scorer = Scorer(sentences, None)

        ranked = scorer.rank([question], as_query=True)[0]
        hits1 += _holds(ranked[0], start)
        hits3 += any(_holds(s, start) for s in ranked[:3])
        claim = question.rstrip("?").strip() + " " + answer + "."
        claims += _holds(scorer.rank([claim])[0][0], start)
    n = len(rows)
    return {
        "evidence@1": hits1 / n,
        "evidence@3": hits3 / n,
        "claim@1": claims / n,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    data = json.loads(SQUAD.read_text())
    rows = [
        (p["context"], qa["question"], qa["answers"][0]["answer_start"], qa["answers"][0]["text"])
        for article in data["data"]
        for p in article["paragraphs"]
        for qa in p["qas"]
        if not qa.get("is_impossible") and qa["answers"]
    ]
    # multi-sentence paragraphs only: with one sentence every stemmer is right
    rows = [
        r for r in rows if len(source_sentences([Passage(number=1, text=r[0], page_start=1)])) > 1
    ]
    product = attribution._stem
    results = {"suffix rules (before)": measure(suffix_rules, rows)}
    results["snowball English (now)"] = measure(product, rows)
    attribution._stem = product
    lines = [
        f"{len(rows)} answerable SQuAD v2 questions whose paragraph has 2+ sentences; lexical "
        "support scores only.",
        "",
        "| stemmer | evidence sentence at rank 1 | in the top 3 | answer claim cites "
        "its sentence | time s |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['evidence@1']:.1%} | {r['evidence@3']:.1%} | {r['claim@1']:.1%} "
            f"| {r['seconds']:.1f} |"
        )
    body = "\n".join(lines)
    print(body)
    record("Stemmer of the citation check", body, "python benchmarks/stemming.py")


if __name__ == "__main__":
    main()
