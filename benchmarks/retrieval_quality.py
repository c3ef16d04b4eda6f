"""Retrieval quality on the shared SQuAD and KorQuAD samples, through `aift eval
retrieval` (default embedding model, or its offline stand-in; re-ranker when available).

Run: .venv/bin/python benchmarks/retrieval_quality.py [--embedding-model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

FILES = [
    ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json",
    ROOT.parent / "shared" / "data" / "retrieval" / "korquad_v1_dev_part1.json",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedding-model", default=None)
    args = parser.parse_args()
    command = [sys.executable, "-m", "aift.cli", "eval", "retrieval", *map(str, FILES), "--json"]
    if args.embedding_model:
        command += ["--embedding-model", args.embedding_model]
    env = {**os.environ, "AIFT_WORKSPACE": tempfile.mkdtemp(prefix="aift-eval-ws-")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    reports = json.loads(done.stdout)
    keys = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
    lines = []
    verdicts = []
    for report in reports:
        lines += [
            f"**{Path(report['file']).name}** — {report['paragraphs']} paragraphs, "
            f"{report['questions']} questions, embeddings {report['embedding_model']}, "
            f"re-ranker {report['reranker'] or 'none available (skipped)'}",
            "",
            "| method | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 |",
            "|---|---|---|---|---|---|",
        ]
        for name, values in report["methods"].items():
            lines.append(f"| {name} | " + " | ".join(f"{values[k]:.3f}" for k in keys) + " |")
        lines.append("")
        methods = report["methods"]
        best_single = max(methods["dense"]["ndcg@10"], methods["keywords"]["ndcg@10"])
        hybrid = methods["hybrid 0.7/0.3"]["ndcg@10"]
        verdicts.append(
            f"{Path(report['file']).name}: hybrid nDCG@10 {hybrid:.3f} vs best single method "
            f"{best_single:.3f} ({'beats it' if hybrid > best_single else 'does not beat it'})"
        )
    lines.append(
        "Goal: hybrid beats the better single method on both sets. " + "; ".join(verdicts) + "."
    )
    lines += [
        "",
        "The weighted fusion maps each method's scores to [0, 1] from the query's floor in "
        "the corpus (BM25 0, lowest cosine) to its best, keyword-only candidates "
        "getting their real cosine (docs/rag.md). The earlier normalisation — min-max between the "
        "candidates' own scores, a method's miss counted as 0 — gave hybrid nDCG@10 0.945 "
        "(SQuAD) and 0.948 (KorQuAD, below keywords' 0.956) with this script on 2026-11-24.",
    ]
    body = "\n".join(lines)
    record(
        "RAG retrieval quality (aift eval retrieval)",
        body,
        "python benchmarks/retrieval_quality.py",
    )
    print(body)


if __name__ == "__main__":
    main()
