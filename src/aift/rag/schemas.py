"""Schemas of knowledge bases, their documents, searches, answers and history, shared by
the API, the CLI and the jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ChunkingSettings(BaseModel):
    """How documents are cut: by tokens of the knowledge base's embedding model."""

    model_config = ConfigDict(extra="forbid")

    chunk_tokens: int = Field(512, ge=32, le=8192, description="Tokens per chunk (upper bound).")
    overlap_tokens: int = Field(128, ge=0, le=4096, description="Tokens shared by neighbours.")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


class KnowledgeBaseCreate(BaseModel):
    """What a user gives to create a knowledge base."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    embedding_model: str | None = Field(
        None, description="Default: AIFT_DEFAULT_EMBEDDING_MODEL (or its offline stand-in)."
    )
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)


class KnowledgeBaseInfo(BaseModel):
    """A knowledge base, bound to one embedding model (name + dimension)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    embedding_model: str = Field(..., description="The model actually used.")
    embedding_requested: str = Field(..., description="What was asked for.")
    dimension: int
    chunking: ChunkingSettings
    effective_chunk_tokens: int = Field(
        ..., description="Chunk size after the model's limit, prefix and special tokens."
    )
    generation: int = Field(..., description="Bumped by each re-index.")
    status: str = Field(..., description="ready or reindexing")
    documents: int = 0
    chunks: int = 0
    points: int | None = Field(None, description="Points in the active index generation.")
    index_backlog: int | None = Field(
        None,
        description="Of those, points not yet optimized into the HNSW index (searched "
        "exactly meanwhile); 0 once the index has caught up.",
    )
    index_note: str | None = Field(
        None, description="Background work of the vector index that affects results."
    )
    warning: str | None = None
    owner_id: str | None = Field(None, description="The user who made it (None: before accounts).")
    created_at: datetime
    updated_at: datetime


class DocumentStatus(StrEnum):
    queued = "queued"
    parsing = "parsing"
    embedding = "embedding"
    indexing = "indexing"  # chunks stored, waiting for the vector index owner
    indexed = "indexed"
    failed = "failed"
    needs_password = "needs_password"


class DocumentInfo(BaseModel):
    """One uploaded file of a knowledge base and how its ingestion went."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kb_id: str
    name: str
    content_type: str
    sha256: str
    size_bytes: int
    pages: int | None = None
    ocr_pages: int = 0
    chunks: int = 0
    status: DocumentStatus
    error: str | None = None
    job_id: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class RejectedFile(BaseModel):
    """A file of an upload that was not accepted, and why."""

    name: str
    reason: str


class DuplicateFile(DocumentInfo):
    """An uploaded file whose content is already in the knowledge base (or earlier in the
    same batch): `file` is its own name, the other fields the document it duplicates."""

    file: str


class UploadResult(BaseModel):
    """What happened to each file of an upload batch."""

    accepted: list[DocumentInfo] = Field(default_factory=list)
    duplicates: list[DuplicateFile] = Field(
        default_factory=list, description="Already in the knowledge base (same content)."
    )
    rejected: list[RejectedFile] = Field(default_factory=list)
    job_id: str | None = Field(None, description="The ingestion job of the accepted files.")


class ReindexRequest(BaseModel):
    """Re-embed every document (e.g. with another embedding model or chunking)."""

    model_config = ConfigDict(extra="forbid")

    embedding_model: str | None = Field(None, description="Default: keep the current model.")
    chunking: ChunkingSettings | None = None


class IngestJobConfig(BaseModel):
    """The job `rag.ingest`: these documents of this knowledge base."""

    kb_id: str
    document_ids: list[str] = Field(..., min_length=1)
    password: str | None = Field(None, description="For encrypted PDFs of this batch.")


class ReindexJobConfig(BaseModel):
    """The job `rag.reindex`: build generation `generation` with these settings."""

    kb_id: str
    generation: int
    embedding_model: str
    embedding_requested: str
    dimension: int
    chunking: ChunkingSettings


class RestoreVectorsJobConfig(BaseModel):
    """The job `rag.restore_vectors`: embed again the chunks a restored backup holds
    without vectors (all knowledge bases when `kb_ids` is empty)."""

    kb_ids: list[str] = Field(default_factory=list)


class SourcePassage(BaseModel):
    """One indexed chunk of a document as other capabilities read it (datasets written
    from documents): its text and where it stands."""

    chunk_id: str
    document_id: str
    document: str = Field(..., description="The document's file name.")
    page_start: int
    page_end: int
    page_breaks: list[int] = Field(default_factory=list)
    section: str | None = None
    text: str


# search ------------------------------------------------------------------------------
MAX_QUERY_CHARS = 2000


class SearchRequest(BaseModel):
    """One query, shared by the search and ask endpoints, the CLI and the evaluation."""

    query: str = Field(..., max_length=MAX_QUERY_CHARS)
    mode: Literal["hybrid", "dense", "keywords"] = "hybrid"
    fusion: Literal["weighted", "rrf"] = "weighted"
    dense_weight: float = Field(0.7, ge=0.0, le=1.0)
    keyword_weight: float = Field(0.3, ge=0.0, le=1.0)
    limit: int = Field(5, ge=1, le=100, description="Hits returned.")
    candidates: int = Field(50, ge=1, le=1000, description="Taken from each method.")
    rerank: bool = Field(True, description="Re-rank with a cross-encoder when one is available.")
    reranker: str | None = Field(None, description="Default: AIFT_DEFAULT_RERANKER.")
    rerank_top: int = Field(20, ge=1, le=200, description="Fused candidates re-ranked.")
    documents: list[str] | None = Field(None, description="Only these document ids.")
    page_from: int | None = Field(None, ge=1)
    page_to: int | None = Field(None, ge=1)
    min_score: float | None = Field(
        None,
        description="Least relevance (re-rank score if re-ranked, else dense cosine) a "
        "source needs. Answers: default depends on the models (see docs/rag.md); search "
        "applies it only with `relevant_only`.",
    )
    relevant_only: bool = Field(
        False,
        description="Search: drop hits below the not-found floor answers use (min_score, "
        "or the models' default), so a query that matches nothing finds nothing.",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty")
        return value.strip()

    @model_validator(mode="after")
    def _coherent(self) -> SearchRequest:
        if self.mode == "hybrid" and self.dense_weight + self.keyword_weight == 0:
            raise ValueError("dense_weight and keyword_weight cannot both be 0")
        if self.page_from and self.page_to and self.page_from > self.page_to:
            raise ValueError("page_from is after page_to")
        return self


class SupportSpan(BaseModel):
    """The source sentence that supports a statement, and where it is."""

    text: str
    char_start: int = Field(..., description="Offset of the sentence in the chunk's text.")
    char_end: int
    page: int = Field(..., description="The page the sentence is on.")
    score: float = Field(..., description="Support score, 0–1 (lexical + embedding).")


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    document: str
    page_start: int
    page_end: int
    chunk_index: int
    text: str
    dense_score: float | None = Field(None, description="Cosine similarity to the query.")
    keyword_score: float | None = Field(
        None,
        description="BM25 score; null when the chunk was not among the keyword candidates "
        "(no shared term, or below them: it counts as 0 in the fusion) or mode is dense.",
    )
    fused_score: float = Field(
        ..., description="The fusion's score, normalised within this query's candidates."
    )
    rerank_score: float | None = None
    relevance: float = Field(
        0.0,
        description="Absolute relevance: the re-rank score when re-ranked, else the dense "
        "cosine; what the not-found floor (min_score) is compared with.",
    )
    page_breaks: list[int] = Field(
        default_factory=list, description="Offsets in `text` where its later pages begin."
    )
    section: str | None = Field(
        None,
        description="The headings the chunk sits under, outermost first, joined by ' › ' "
        "(documents whose headings were found: Word, HTML, e-books, sheets, Markdown).",
    )
    match: SupportSpan | None = Field(
        None, description="The chunk's sentence that best matches the query, and its page."
    )


class SearchResponse(BaseModel):
    query: str
    knowledge_base: str
    embedding_model: str
    mode: str
    fusion: str
    reranked: bool
    reranker: str | None = None
    rerank_skipped: str | None = Field(
        None, description="Why re-ranking was asked for but not done (one line)."
    )
    notes: list[str] = Field(default_factory=list)
    hits: list[SearchHit]
    latency_ms: float
    cached: bool = Field(
        False, description="Served from the search cache (same query, unchanged knowledge base)."
    )


# answers -----------------------------------------------------------------------------
class AskRequest(SearchRequest):
    """A question: how to search (as for search), and how to answer."""

    model: str | None = Field(None, description="Any served model; default AIFT_DEFAULT_LLM.")
    answer_mode: Literal["generate", "quotes", "extractive"] = Field(
        "generate",
        description="generate: a model answers, citations attributed afterwards; quotes: "
        "the same plus the source sentences that answer the question; extractive: those "
        "quotes alone (no model, instant).",
    )
    max_tokens: int = Field(320, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    repetition_penalty: float = Field(
        1.1, ge=1.0, le=2.0, description="Discourages repeating tokens (1 disables it)."
    )
    support_threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="How closely a source sentence must match an answer sentence (lexical "
        "and embedding similarity, 0–1) for the answer to cite it.",
    )
    unsupported: Literal["flag", "not_found"] = Field(
        "flag",
        description="A generated answer none of whose statements the sources support "
        "(the model answered from its own knowledge): flag — keep it, marked "
        "supported: false with a note; not_found — answer that nothing was found instead.",
    )
    max_quotes: int = Field(3, ge=1, le=20, description="Most supporting quotes returned.")
    context: Literal["sentences", "excerpts", "chunks"] = Field(
        "sentences",
        description="What the model reads: sentences — the few source sentences that best "
        "answer the question (what small models answer best from); excerpts — each "
        "source's best sentence with its neighbours (~600 characters); chunks — the "
        "whole sources.",
    )
    context_sentences: int = Field(
        3, ge=1, le=20, description="How many sentences the `sentences` context holds."
    )
    stream: bool = False
    history: bool = Field(True, description="Keep the question and answer in the history.")


class Citation(SearchHit):
    number: int
    support: SupportSpan | None = Field(
        None, description="The sentence of this source the answer relies on (cited ones)."
    )


class Quote(SupportSpan):
    """A sentence of a source, verbatim, that answers the question."""

    number: int = Field(..., description="The source's number.")
    chunk_id: str
    document_id: str
    document: str


class CitationChanges(BaseModel):
    """What attribution did to the model's own [n] markers."""

    kept: list[int] = Field(default_factory=list, description="Markers the check confirmed.")
    replaced: list[int] = Field(
        default_factory=list, description="Markers no source sentence supported (removed)."
    )
    inserted: list[int] = Field(default_factory=list, description="Markers added.")


class AskResponse(BaseModel):
    """The checked answer, what it cites and what it was given."""

    id: str = Field(..., description="History id.")
    question: str
    knowledge_base: str
    model: str | None
    answer_mode: str = "generate"
    answer: str
    found: bool = Field(..., description="False when nothing relevant enough was found.")
    citations: list[Citation] = Field(default_factory=list)
    invalid_citations: list[int] = Field(default_factory=list)
    citation_changes: CitationChanges = Field(default_factory=CitationChanges)
    uncited_sources: list[Citation] = Field(default_factory=list)
    quotes: list[Quote] = Field(default_factory=list)
    rerank_skipped: str | None = None
    stopped_repeating: bool = Field(
        False, description="The answer was cut because it had begun looping."
    )
    supported: bool = Field(
        True,
        description="Whether the sources support at least one statement of the answer "
        "(false for an answer from the model's own knowledge, and when nothing was found).",
    )
    statements: int = Field(0, description="Sentences of the answer that state something.")
    supported_statements: int = Field(0, description="Of those, the ones a source supports.")
    notes: list[str] = Field(default_factory=list)
    search_ms: float
    first_token_ms: float | None = None
    total_ms: float


# history -----------------------------------------------------------------------------
class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    kb_id: str
    kb_name: str
    query: str
    request: dict[str, Any]
    hits: list[dict[str, Any]]
    answer: str | None = None
    model: str | None = None
    citations: dict[str, Any] | None = None
    latency_ms: float
    created_at: datetime


class PageView(BaseModel):
    """A page of a document as a citation opens it: its image and the passage's boxes."""

    document_id: str
    document: str
    page: int
    pages: int | None = None
    chunk_id: str | None = None
    passage: str = Field("", description="The chunk's text on this page.")
    image_url: str | None = Field(None, description="PNG of the page; null for text files.")
    width: float | None = Field(None, description="Page width in PDF points.")
    height: float | None = Field(None, description="Page height in PDF points.")
    boxes: list[tuple[float, float, float, float]] = Field(
        default_factory=list,
        description="left, top, right, bottom of each highlighted line, as page fractions.",
    )
    source: str = Field(..., description="'text layer', 'ocr', or 'text' (a text file).")


# retrieval evaluation of a knowledge base --------------------------------------------
MAX_EVAL_QUESTIONS = 200


class EvalQuestion(BaseModel):
    """One row of an evaluation file: a question and where its answer is."""

    model_config = ConfigDict(extra="ignore")

    question: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    document: str | None = Field(None, description="File name of the relevant document.")
    page: int | None = Field(None, ge=1, description="Page of the answer in that document.")
    answer: str | None = Field(None, description="Text the relevant chunk contains.")

    @model_validator(mode="after")
    def _has_target(self) -> EvalQuestion:
        if not self.document and not self.answer:
            raise ValueError("give the relevant document (and page) or the answer text")
        return self


class EvalRow(BaseModel):
    """How one question fared: the rank of the first relevant hit (null: not in the top)."""

    question: str
    expected: str
    rank: int | None
    top_document: str | None
    top_page: int | None


class KbEvaluation(BaseModel):
    knowledge_base: str
    questions: int
    mode: str
    reranked: bool
    metrics: dict[str, float] = Field(..., description="recall@1/5/10, MRR@10, nDCG@10.")
    rows: list[EvalRow]
    notes: list[str] = Field(default_factory=list)
    seconds: float


# answer evaluation of a knowledge base -------------------------------------------------
MAX_ANSWER_QUESTIONS = 50  # × settings, answered in the request
MAX_EXTRACTIVE_QUESTIONS = 500  # extractive answers only: no model, ~0.1 s each
MAX_ANSWER_JOB_QUESTIONS = 5000  # a larger file runs as a job, up to this many
ANSWER_EVAL_KIND = "rag.evaluate_answers"


class AnswerQuestion(BaseModel):
    """One row of an answer-evaluation file: a question, its accepted answers and where
    the answer is — or `unanswerable` when the knowledge base does not hold it."""

    model_config = ConfigDict(extra="ignore")

    question: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    answers: list[str] = Field(default_factory=list, description="Accepted forms.")
    document: str | None = Field(None, description="File name of the document to cite.")
    page: int | None = Field(None, ge=1, description="Page to cite in that document.")
    unanswerable: bool = Field(False, description="The knowledge base does not hold it.")

    @model_validator(mode="before")
    @classmethod
    def _one_answer(cls, row: Any) -> Any:
        """`answer` (one form, or forms separated by |) is read as `answers`."""
        if isinstance(row, dict) and "answers" not in row and row.get("answer") is not None:
            row = {**row, "answers": [a.strip() for a in str(row["answer"]).split("|")]}
        return row

    @model_validator(mode="after")
    def _has_target(self) -> AnswerQuestion:
        if not self.unanswerable and not self.answers and not self.document:
            raise ValueError("give the accepted answers, the document to cite, or unanswerable")
        return self


class AnswerEvalRow(BaseModel):
    """How one question was answered with one setting."""

    setting: str
    question: str
    answer: str
    found: bool
    supported: bool
    contains: bool | None = Field(None, description="An accepted form is in the answer.")
    f1: float | None = Field(None, description="Best token F1 against an accepted form.")
    first_citation_right: bool | None = Field(
        None, description="The first [n] cites the expected document (and page)."
    )
    citation_recall: float | None = Field(None, description="Statements cited / statements.")
    citations_on_target: float | None = Field(
        None, description="Citations of the expected document (and page) / citations."
    )
    not_found_right: bool | None = Field(
        None, description="Unanswerable: the answer said not found or was flagged unsupported."
    )
    first_token_ms: float | None = None
    total_ms: float


class AnswerEvalSetting(BaseModel):
    """One setting's means over the questions each metric applies to."""

    setting: str
    questions: int
    contains: float | None = None
    f1: float | None = None
    first_citation_right: float | None = None
    citation_recall: float | None = None
    citations_on_target: float | None = None
    not_found_right: float | None = None
    first_token_ms_p50: float | None = None
    total_ms_p50: float


class AnswerEvaluation(BaseModel):
    """Answers of a knowledge base to a question file, per setting, and every answer."""

    knowledge_base: str
    questions: int
    settings: list[AnswerEvalSetting]
    rows: list[AnswerEvalRow]
    seconds: float


class AnswerEvalJobConfig(BaseModel):
    """An answer evaluation too large for one request, run as a job: the questions and
    the ask request of each setting (their queries are the questions')."""

    knowledge_base: str = Field(..., description="Knowledge base id.")
    questions: list[AnswerQuestion] = Field(..., min_length=1, max_length=MAX_ANSWER_JOB_QUESTIONS)
    settings: dict[str, AskRequest] = Field(..., min_length=1, max_length=3)
