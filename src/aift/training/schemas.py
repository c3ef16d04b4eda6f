"""Schemas of training datasets, shared by the API, the CLI, the UI and the jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from aift.models.schemas import ResolvedModel
from aift.work.schemas import JobInfo


class DatasetFormat(StrEnum):
    alpaca = "alpaca"  # instruction / input / output
    chat = "chat"  # messages: [{role, content}]
    sharegpt = "sharegpt"  # conversations: [{from, value}]
    text = "text"  # raw text for continued pre-training
    preference = "preference"  # prompt / chosen / rejected (also Anthropic HH, UltraFeedback)
    kto = "kto"  # prompt / completion / label: unpaired good and bad examples
    prompts = "prompts"  # prompt (and its reference answer) for reinforcement learning


# Which row formats each training objective learns from (GRPO also takes demonstrations:
# their last assistant turn becomes the reference answer).
DEMONSTRATIONS = (DatasetFormat.alpaca, DatasetFormat.chat, DatasetFormat.sharegpt)


class RowError(BaseModel):
    """Why one row of an upload cannot be used (rows count from 1)."""

    row: int
    reason: str


class TokenStats(BaseModel):
    """Token lengths of the rendered training examples, by the base model's tokenizer."""

    tokenizer: str
    examples: int
    min: int
    mean: float
    p50: int
    p95: int
    max: int
    over_max_length: int = Field(0, description="Examples longer than max_length.")
    max_length: int | None = None


class DatasetOptions(BaseModel):
    """How to read and split an uploaded dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=120, description="Default: the file name.")
    format: DatasetFormat | None = Field(None, description="Default: detected from the rows.")
    val_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share held out for validation.")
    seed: int = Field(42, description="Seed of the train/validation shuffle.")
    skip_invalid: bool = Field(False, description="Keep the valid rows instead of refusing.")
    base_model: str | None = Field(None, description="Tokenizer for previews and token stats.")
    max_length: int | None = Field(None, ge=16, le=131_072, description="Report longer rows.")


class DatasetInfo(BaseModel):
    """A stored training dataset."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    format: DatasetFormat
    source_file: str
    size_bytes: int
    sha256: str
    rows_train: int
    rows_val: int
    rows_skipped: int
    stats: dict = Field(default_factory=dict)
    created_at: datetime
    owner_id: str | None = Field(
        None, description="The user who uploaded it (None: before accounts)."
    )


class DatasetReport(BaseModel):
    """What an upload produced: the dataset, skipped-row errors and rendered previews."""

    dataset: DatasetInfo
    errors: list[RowError] = Field(default_factory=list)
    preview: list[str] = Field(default_factory=list)


# datasets written from documents --------------------------------------------------
MAX_GENERATED_ROWS = 5000


class DocumentDatasetRequest(BaseModel):
    """Write a training dataset from a knowledge base's documents: a served model writes
    questions about each passage; an answer is kept only where the passage supports it.
    The rows wait for review; only accepted rows train."""

    model_config = ConfigDict(extra="forbid")

    knowledge_base: str = Field(..., min_length=1, description="Knowledge base id or name.")
    documents: list[str] = Field(
        default_factory=list, max_length=500, description="Document ids (none: all)."
    )
    model: str | None = Field(
        None, description="The served model that writes questions (default AIFT_DEFAULT_LLM)."
    )
    name: str | None = Field(None, max_length=120, description="The dataset's name.")
    answers: Literal["extractive", "generated"] = Field(
        "extractive",
        description="extractive: the answer is the span of the passage the question was "
        "written for; generated: the model answers from the passage, and the answer is "
        "kept only when attribution finds it in the passage.",
    )
    preference_pairs: bool = Field(
        False,
        description="Also ask the model without the passage; where that answer states "
        "something the passage does not support, keep the pair (grounded answer chosen, "
        "unsupported one rejected) and make a preference dataset for DPO.",
    )
    questions_per_sentence: int = Field(
        2, ge=1, le=5, description="Most questions written about one sentence."
    )
    phrasings: int = Field(
        2, ge=1, le=3, description="Questions asked for each answer, each phrased otherwise."
    )
    max_rows: int = Field(500, ge=1, le=MAX_GENERATED_ROWS, description="Most rows written.")
    support_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="How much of an answer the passage must support."
    )
    val_ratio: float = Field(0.1, ge=0.0, le=0.5, description="Accepted rows held out.")
    seed: int = 0


class DocumentDatasetJobConfig(DocumentDatasetRequest):
    """The job `dataset.from_documents`: the request with its names resolved."""

    dataset_id: str
    kb_id: str
    model: str


class DocumentDatasetStarted(BaseModel):
    """The dataset a request created (empty until rows are accepted) and its job."""

    dataset: DatasetInfo
    job: JobInfo


class DraftStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class DraftRow(BaseModel):
    """A generated row waiting for review, with the passage it was written from."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: DraftStatus
    question: str
    answer: str
    rejected_answer: str | None = Field(
        None, description="The unsupported answer of a preference pair."
    )
    support: float = Field(..., description="Share of the answer the passage supports (0–1).")
    document_id: str
    document: str
    page: int
    section: str | None = None
    passage: str
    edited: bool = False


class DraftCounts(BaseModel):
    pending: int = 0
    accepted: int = 0
    rejected: int = 0


class DraftPage(BaseModel):
    """A page of a dataset's generated rows and how many there are of each status."""

    rows: list[DraftRow]
    total: int = Field(..., description="Rows with the status asked for.")
    counts: DraftCounts


class DraftReview(BaseModel):
    """Accept, reject (or set back to pending) rows: those listed, or all of a status."""

    model_config = ConfigDict(extra="forbid")

    status: DraftStatus
    ids: list[int] = Field(default_factory=list, max_length=MAX_GENERATED_ROWS)
    all_with_status: DraftStatus | None = Field(
        None, description="Instead of ids: every row that now has this status."
    )

    @model_validator(mode="after")
    def _one_selection(self) -> DraftReview:
        if bool(self.ids) == (self.all_with_status is not None):
            raise ValueError("name either ids or all_with_status")
        return self


class DraftEdit(BaseModel):
    """A reviewer's correction of one row (an edited row is accepted unless a status
    is given)."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, min_length=1, max_length=4000)
    answer: str | None = Field(None, min_length=1, max_length=8000)
    rejected_answer: str | None = Field(None, min_length=1, max_length=8000)
    status: DraftStatus | None = None

    @field_validator("question", "answer", "rejected_answer")
    @classmethod
    def _not_blank(cls, text: str | None) -> str | None:
        if text is not None and not text.strip():
            raise ValueError("must not be blank")
        return text.strip() if text is not None else None


class MergeRequest(BaseModel):
    """Fold an adapter into its base model as a new full model."""

    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(..., min_length=1, description="Served name of the adapter.")
    name: str | None = Field(None, max_length=80, description="Name of the merged model.")


# the run config: one per fine-tuning run (YAML file, API, UI, job) ---------------
class Method(StrEnum):
    lora = "lora"
    dora = "dora"
    full = "full"
    qlora = "qlora"  # 4-bit base (bitsandbytes), GPU only


class Objective(StrEnum):
    """What a run optimises: demonstrations (sft), preferences or rewards."""

    sft = "sft"  # supervised fine-tuning on demonstrations
    dpo = "dpo"  # direct preference optimisation (and its loss variants)
    orpo = "orpo"  # odds-ratio preference optimisation: reference-free, SFT in the same loss
    simpo = "simpo"  # simple preference optimisation: reference-free, length-normalised
    kto = "kto"  # Kahneman-Tversky optimisation: unpaired good/bad examples
    grpo = "grpo"  # group relative policy optimisation against declared rewards
    rloo = "rloo"  # REINFORCE leave-one-out: the same rewards, each sample's baseline the rest
    reward = "reward"  # a reward model: learns to score the chosen reply above the rejected


OBJECTIVE_FORMATS: dict[Objective, tuple[DatasetFormat, ...]] = {
    Objective.sft: (*DEMONSTRATIONS, DatasetFormat.text),
    Objective.dpo: (DatasetFormat.preference,),
    Objective.orpo: (DatasetFormat.preference,),
    Objective.simpo: (DatasetFormat.preference,),
    Objective.kto: (DatasetFormat.kto, DatasetFormat.preference),
    Objective.grpo: (DatasetFormat.prompts, *DEMONSTRATIONS),
    Objective.rloo: (DatasetFormat.prompts, *DEMONSTRATIONS),
    Objective.reward: (DatasetFormat.preference,),
}
# Objectives that sample completions and learn from declared rewards.
REWARD_OBJECTIVES = (Objective.grpo, Objective.rloo)


class Precision(StrEnum):
    auto = "auto"  # bf16 where the CPU or GPU computes it natively, else fp32
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0)
    # 0 as in PEFT and LLaMA-Factory: LoRA dropout copies each adapted layer's input per
    # pass; a LoRA run of SmolLM2-135M on a CPU was 1.4× slower with 0.05 and held 0.3 GB
    # more (docs/benchmarks.md, "a small chat dataset").
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout on the adapter's input (0: none)."
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="'all-linear' or module names such as q_proj, v_proj."
    )

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and (not value or any(not v.strip() for v in value)):
            raise ValueError("target_modules must name at least one module")
        return value


# Default EWC strength: the value the SmolLM2 LoRA fact-chain benchmark supports
# (docs/benchmarks.md, "Continual learning").
DEFAULT_EWC_LAMBDA = 1e6


class ContinualSettings(BaseModel):
    """This run as one stage of a continual-learning chain of tasks."""

    model_config = ConfigDict(extra="forbid")

    chain: str = Field(
        ...,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Name of the chain (letters, digits, . _ -).",
    )
    start: Literal["new", "continue"] = Field(
        ..., description="new: stage 1 of a new chain; continue: the next stage of it."
    )
    task: str | None = Field(
        None, max_length=60, description="Name of this stage's task (default: the dataset's)."
    )
    ewc_lambda: float = Field(
        DEFAULT_EWC_LAMBDA,
        ge=0.0,
        le=1e12,
        description="EWC strength λ against forgetting earlier tasks (0 turns EWC off).",
    )
    ewc_gamma: float = Field(
        1.0, ge=0.0, le=1.0, description="Online EWC decay of earlier tasks' Fisher (1: none)."
    )
    fisher_samples: int = Field(
        64, ge=0, le=100_000, description="Examples for this task's Fisher (0: no EWC after it)."
    )
    replay_ratio: float = Field(
        0.0,
        ge=0.0,
        le=4.0,
        description="Earlier tasks' training rows mixed in, as a share of this task's rows.",
    )
    exact_match: bool = Field(
        False, description="Also score this task by exact match of generated answers."
    )
    eval_examples: int = Field(
        100, ge=1, le=10_000, description="Validation examples evaluated per task and stage."
    )


class DistributedSettings(BaseModel):
    """Training on several processes (and machines), launched with torchrun."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp",
        description="ddp: a full copy per process; fsdp: parameters sharded (PyTorch FSDP); "
        "deepspeed: ZeRO stage 2/3 (CUDA only).",
    )
    processes_per_node: int = Field(2, ge=1, le=64, description="Processes (GPUs) per machine.")
    nodes: int = Field(1, ge=1, le=1024, description="Machines taking part.")
    node_rank: int = Field(0, ge=0, description="This machine's rank (0 runs the job).")
    master_addr: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9.:\-\[\]]+$",
        description="Address of the node-0 machine, reachable by every node.",
    )
    master_port: int = Field(29500, ge=1024, le=65535)
    zero_stage: Literal[2, 3] = Field(
        2,
        description="DeepSpeed ZeRO stage.",
        json_schema_extra={"applies_when": {"strategy": ["deepspeed"]}},
    )
    offload: bool = Field(
        False,
        description="DeepSpeed: keep optimizer state (and stage-3 parameters) in CPU memory.",
        json_schema_extra={"applies_when": {"strategy": ["deepspeed"]}},
    )

    @model_validator(mode="after")
    def _coherent(self) -> DistributedSettings:
        if self.node_rank >= self.nodes:
            raise ValueError(f"node_rank {self.node_rank} is not below nodes {self.nodes}")
        return self

    @property
    def world_size(self) -> int:
        return self.nodes * self.processes_per_node


PREFERENCE_OBJECTIVES: list[JsonValue] = ["dpo", "orpo", "simpo", "kto", "reward"]
DPO_LOSSES = Literal[
    "sigmoid",
    "ipo",
    "robust",
    "hinge",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
    "sft",
]


class PreferenceSettings(BaseModel):
    """Settings of the preference objectives (DPO, ORPO, SimPO, KTO) and of reward-model
    training, as trl names them."""

    model_config = ConfigDict(extra="forbid")

    beta: float = Field(
        0.1,
        gt=0.0,
        le=100.0,
        description="Strength of the pull towards the reference (ORPO: weight of the odds "
        "ratio; SimPO: reward scale; IPO: its τ).",
        json_schema_extra={"applies_when": {"objective": ["dpo", "orpo", "simpo", "kto"]}},
    )
    loss_type: list[DPO_LOSSES] = Field(
        default_factory=lambda: ["sigmoid"],  # type: ignore[arg-type]
        min_length=1,
        max_length=4,
        description="DPO loss: sigmoid (DPO), ipo, robust, hinge… several are summed.",
        json_schema_extra={"applies_when": {"objective": ["dpo"]}},
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="Robust DPO: the share of preference labels assumed flipped.",
        json_schema_extra={"applies_when": {"objective": ["dpo"]}},
    )
    precompute_reference: bool = Field(
        False,
        description="Compute the reference log-probabilities once before training (full "
        "fine-tuning always does: no second model copy in memory).",
        json_schema_extra={"applies_when": {"objective": ["dpo", "kto"]}},
    )
    simpo_gamma: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="SimPO's target reward margin.",
        json_schema_extra={"applies_when": {"objective": ["simpo"]}},
    )
    desirable_weight: float = Field(
        1.0,
        gt=0.0,
        le=100.0,
        description="KTO: weight of the good examples (raise it when they are fewer).",
        json_schema_extra={"applies_when": {"objective": ["kto"]}},
    )
    undesirable_weight: float = Field(
        1.0,
        gt=0.0,
        le=100.0,
        description="KTO: weight of the bad examples.",
        json_schema_extra={"applies_when": {"objective": ["kto"]}},
    )
    center_rewards: float = Field(
        0.01,
        ge=0.0,
        le=10.0,
        description="Reward model: pull its scores towards 0 (trl's "
        "center_rewards_coefficient), so that a score reads the same across prompts.",
        json_schema_extra={"applies_when": {"objective": ["reward"]}},
    )

    @field_validator("loss_type", mode="before")
    @classmethod
    def _losses(cls, value: object) -> object:
        """One loss may be named alone, or several comma-separated (a form, a YAML line)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class RewardKind(StrEnum):
    exact = "exact"  # the completion is the row's answer (surrounding space ignored)
    normalized = "normalized"  # equal after lower-casing, dropping punctuation and articles
    contains = "contains"  # the normalised answer occurs in the normalised completion
    regex = "regex"  # the pattern matches somewhere in the completion
    numeric = "numeric"  # the completion's last number is the answer, within a tolerance
    json_schema = "json_schema"  # the completion is JSON valid against the schema
    length = "length"  # the completion's length lies within bounds
    model = "model"  # a reward model trained here (objective reward) scores the completion
    cites_page = "cites_page"  # the completion's statements are supported by the row's page


ANSWER_REWARDS = (RewardKind.exact, RewardKind.normalized, RewardKind.contains, RewardKind.numeric)


class RewardSpec(BaseModel):
    """One declared reward of a GRPO run and its weight: a score in [0, 1] per completion,
    except a reward model's, which is its raw score (a logit, about 0 for an average reply
    when it was trained with centred rewards)."""

    model_config = ConfigDict(extra="forbid")

    kind: RewardKind
    weight: float = Field(1.0, ge=-100.0, le=100.0, description="Weight in the summed reward.")
    pattern: str | None = Field(None, max_length=2000, description="regex: the pattern.")
    tolerance: float = Field(
        0.0, ge=0.0, description="numeric: the largest accepted absolute difference."
    )
    json_schema: dict | None = Field(None, description="json_schema: the JSON schema.")
    min_chars: int = Field(0, ge=0, description="length: the fewest characters.")
    max_chars: int | None = Field(None, ge=1, description="length: the most characters.")
    model: str | None = Field(
        None, min_length=1, description="model: the served name of a reward model."
    )
    knowledge_base: str | None = Field(
        None,
        min_length=1,
        description="cites_page: the knowledge base holding each row's document and page.",
    )
    threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="cites_page: how closely a page sentence must match a statement of the "
        "completion to support it (RAG's attribution, lexical).",
    )

    @model_validator(mode="after")
    def _complete(self) -> RewardSpec:
        if self.kind == RewardKind.regex and not self.pattern:
            raise ValueError("a regex reward needs its pattern")
        if self.kind == RewardKind.json_schema and self.json_schema is None:
            raise ValueError("a json_schema reward needs its json_schema")
        if self.kind == RewardKind.length and self.max_chars is None and not self.min_chars:
            raise ValueError("a length reward needs min_chars or max_chars")
        if self.kind == RewardKind.model and not self.model:
            raise ValueError("a model reward needs the model (a reward model's name)")
        if self.kind == RewardKind.cites_page and not self.knowledge_base:
            raise ValueError("a cites_page reward needs its knowledge_base")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError("max_chars is below min_chars")
        return self


class GrpoSettings(BaseModel):
    """GRPO and RLOO: completions sampled per prompt, scored by the declared rewards, and
    the model pushed towards the better ones of each group (trl's GRPOTrainer and
    RLOOTrainer)."""

    model_config = ConfigDict(extra="forbid")

    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(kind=RewardKind.normalized)],
        min_length=1,
        max_length=16,
        description="Declared rewards, summed with their weights.",
    )
    num_generations: int = Field(
        4, ge=2, le=64, description="Completions sampled per prompt (the group)."
    )
    max_completion_length: int = Field(64, ge=1, le=8192, description="Tokens per completion.")
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="Sampling temperature.")
    beta: float = Field(
        0.0, ge=0.0, le=10.0, title="KL beta", description="KL penalty to the reference (0: none)."
    )
    vllm: bool = Field(
        False,
        title="Generate with vLLM",
        description="Sample the groups with vLLM on the training GPU (trl's colocate mode) "
        "instead of transformers' generate: needs the gpu extra and an NVIDIA GPU.",
    )
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = Field(
        "dapo",
        title="Token loss",
        description="GRPO: how token losses are averaged (trl's loss_type).",
        json_schema_extra={"applies_when": {"objective": ["grpo"]}},
    )


class EvaluationSettings(BaseModel):
    """Score the model before and after the run on a dataset's validation rows, so the
    run's result says whether it helped (loss, exact match of greedy answers, and on a
    preference set the rate at which the chosen reply is the likelier one)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(
        None, description="Dataset id whose validation rows score the run (default: its own)."
    )
    exact_match: bool = Field(True, description="Also score greedy answers by exact match.")
    examples: int = Field(50, ge=1, le=1000, description="Validation rows scored (the first).")


class TrainingConfig(BaseModel):
    """Everything a fine-tuning run needs; saved next to its output."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=80, description="Used in the output folder name.")
    base_model: str = Field(..., min_length=1, description="Model name, alias or path.")
    dataset: str = Field(..., min_length=1, description="Dataset id (aift datasets list).")
    method: Method = Method.lora
    objective: Objective = Field(
        Objective.sft,
        description="sft: learn demonstrations; dpo, orpo, simpo, kto: learn preferences; "
        "grpo, rloo: learn from declared rewards.",
    )
    adapter: str | None = Field(
        None,
        min_length=1,
        description="Served name of an earlier run's adapter to train further (SFT → DPO).",
        json_schema_extra={"applies_when": {"method": ["lora", "dora", "qlora"]}},
    )
    preference: PreferenceSettings = Field(
        default_factory=PreferenceSettings,
        json_schema_extra={"applies_when": {"objective": PREFERENCE_OBJECTIVES}},
    )
    grpo: GrpoSettings = Field(
        default_factory=GrpoSettings,
        description="GRPO and RLOO: sampling and rewards.",
        json_schema_extra={"applies_when": {"objective": ["grpo", "rloo"]}},
    )
    lora: LoraSettings = Field(
        default_factory=LoraSettings,
        json_schema_extra={"applies_when": {"method": ["lora", "dora", "qlora"]}},
    )
    learning_rate: float = Field(2e-4, gt=0, le=1.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(
        0.03,
        ge=0.0,
        lt=1.0,
        description="Share of the steps spent warming the learning rate up.",
        json_schema_extra={
            "applies_when": {"lr_scheduler": ["linear", "cosine", "constant_with_warmup"]}
        },
    )
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    epochs: float = Field(3.0, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, description="Overrides epochs when set.")
    batch_size: int = Field(4, ge=1, le=1024)
    gradient_accumulation: int = Field(1, ge=1, le=1024)
    max_length: int = Field(1024, ge=16, le=131_072)
    packing: bool = Field(True, description="Pack several examples per row (no padding).")
    loss_on: Literal["assistant", "all"] = Field(
        "assistant", description="Train on assistant tokens only (chat data) or on all tokens."
    )
    seed: int = 42
    eval_steps: int | None = Field(None, ge=1, description="Validation loss interval.")
    save_steps: int | None = Field(
        None, ge=1, description="Checkpoint interval (default: each epoch, at most every 25 steps)."
    )
    logging_steps: int = Field(1, ge=1)
    save_total_limit: int = Field(2, ge=1, le=100)
    precision: Precision = Precision.auto
    gradient_checkpointing: bool = False
    continual: ContinualSettings | None = Field(
        None, description="Train as a stage of a continual-learning chain (EWC, replay)."
    )
    distributed: DistributedSettings | None = Field(
        None, description="Train on several processes or machines (DDP, FSDP, DeepSpeed)."
    )
    evaluation: EvaluationSettings | None = Field(
        None, description="Score the model before and after the run on validation rows."
    )

    @model_validator(mode="after")
    def _coherent(self) -> TrainingConfig:
        if self.method == Method.full and self.lora != LoraSettings():
            raise ValueError("lora settings do not apply to full fine-tuning")
        if self.continual is not None and self.distributed is not None:
            raise ValueError("continual stages train in one process; drop distributed")
        if self.objective != Objective.sft and self.distributed is not None:
            raise ValueError(f"{self.objective.value} runs in one process; drop distributed")
        if self.adapter is not None and self.continual is not None:
            raise ValueError("a continual stage continues its chain; drop adapter")
        if self.adapter is not None and self.method == Method.full:
            raise ValueError("adapter trains an adapter further: use method lora or dora")
        if self.evaluation is not None and (self.continual or self.distributed):
            raise ValueError(
                "evaluation scores a plain run: a continual stage scores every task of its "
                "chain already, and a distributed run's ranks cannot pause to score"
            )
        if self.evaluation is not None and self.objective == Objective.reward:
            raise ValueError("a reward model scores replies; it is not scored on answers")
        if self.adapter is not None and self.objective == Objective.reward:
            raise ValueError("a reward model trains a new adapter beside its new score head")
        if self.continual is not None and self.objective == Objective.reward:
            raise ValueError("a reward model is not a stage of a continual chain")
        return self


class ChainTask(BaseModel):
    """One task of a chain as later stages need it: its data and how it is scored."""

    stage: int = Field(..., ge=1)
    task: str
    dataset: str
    exact_match: bool = False


class StagePlan(BaseModel):
    """Where a chain stage starts from, fixed at submission."""

    stage: int = Field(..., ge=1)
    task: str
    previous_dir: str | None = Field(None, description="Output of the stage before, if any.")
    earlier: list[ChainTask] = Field(default_factory=list, description="Tasks of earlier stages.")


class TrainingJobConfig(TrainingConfig):
    """The run config plus what the service fixed at submission (so resume is exact)."""

    output_dir: str = Field(..., description="Absolute output folder, chosen at submission.")
    base: ResolvedModel = Field(..., description="Where the base model's files are.")
    adapter_dir: str | None = Field(None, description="Folder of `adapter`, when one is named.")
    reward_models: dict[str, str] = Field(
        default_factory=dict, description="Folder of each reward model a reward names."
    )
    reward_pages: str | None = Field(
        None, description="File of the page texts a cites_page reward checks against."
    )
    stage: StagePlan | None = Field(None, description="Set for continual-learning stages.")

    @property
    def base_name(self) -> str:
        return self.base.name


class MergeJobConfig(MergeRequest):
    adapter_dir: str
    base: ResolvedModel
    output_dir: str


class TrainingEstimate(BaseModel):
    """What a run config will cost, before it starts: memory, steps and a time guess."""

    parameters: int = Field(..., description="Parameters of the base model.")
    memory_bytes: int = Field(..., description="RAM (or GPU memory) the run needs, about.")
    memory_available_bytes: int = Field(..., description="What this machine can give it.")
    fits: bool
    steps: int = Field(..., description="Optimizer steps of the whole run.")
    tokens: int = Field(..., description="Training tokens processed, about.")
    tokens_per_second: float | None = None
    seconds: float | None = Field(None, description="Expected duration, about.")
    basis: str = Field(..., description="Where the time guess comes from.")
    warnings: list[str] = Field(default_factory=list)


class CurvePoint(BaseModel):
    """One logged step of a run: training or validation figures (whichever were logged).

    `extra` holds the objective's own figures by trl's names (rewards/chosen,
    rewards/margins, rewards/accuracies, kl, reward, reward_std, completions/mean_length…).
    """

    step: int
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    extra: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_extra(cls, data: object) -> object:
        """Numbers logged under other names go to `extra` (run-level totals left out)."""
        if not isinstance(data, dict) or "extra" in data:
            return data
        known = set(cls.model_fields) | {"max_steps", "tokens_per_second", "eta_seconds"}
        extra = {
            key: float(value)
            for key, value in data.items()
            if key not in known
            and not key.startswith(("train_", "total_"))
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        return {**{k: v for k, v in data.items() if k in known}, "extra": extra}


class TrainingCurve(BaseModel):
    """A run's logged history, for its charts (points after `after` only, when asked)."""

    job_id: str
    points: list[CurvePoint]


class ExampleScore(BaseModel):
    """How a model did on some examples: loss and, where asked, exact match."""

    loss: float | None = Field(None, description="Mean token loss on the validation examples.")
    exact_match: float | None = Field(None, description="Share of answers matched exactly.")
    preference_rate: float | None = Field(
        None,
        description="Share of preference pairs whose chosen reply the model finds likelier "
        "than the rejected one (a preference set only).",
    )
    examples: int = 0


class TaskScore(ExampleScore):
    """How the model did on one task's validation examples after one stage."""

    task: str
    stage_trained: int = Field(..., description="The stage that trained this task.")


class RunEvaluation(BaseModel):
    """A run's before/after figures on its evaluation set (`before`: the model the run
    started from)."""

    dataset: str
    before: ExampleScore
    after: ExampleScore


class ForgettingSummary(BaseModel):
    """Continual-learning figures of a chain after its last stage (T tasks).

    With R[i][j] the score on task j after stage i: average accuracy = mean_j R[T][j];
    backward transfer = mean_{j<T} (R[T][j] - R[j][j]) (Lopez-Paz & Ranzato 2017, negative
    is forgetting); forgetting = mean_{j<T} (max_{l<T} R[l][j] - R[T][j]) (Chaudhry et al.
    2018). The loss figures are the same with loss for R (there, positive is forgetting).
    """

    stages: int
    average_accuracy: float | None = None
    backward_transfer: float | None = None
    forgetting: float | None = None
    average_loss: float | None = None
    backward_transfer_loss: float | None = None
    forgetting_loss: float | None = None


class ChainStage(BaseModel):
    """One finished stage of a chain: what it trained, with what, and its matrix row."""

    chain: str
    stage: int
    task: str
    dataset: str
    model: str = Field(..., description="Served name of the stage's adapter or model.")
    output_dir: str
    method: Method
    base_model: str
    ewc_lambda: float
    ewc_gamma: float
    replay_ratio: float
    replayed_rows: int = 0
    exact_match: bool = False
    scores: list[TaskScore] = Field(default_factory=list, description="Row of the matrix.")
    summary: ForgettingSummary
    finished_at: datetime


class ChainInfo(BaseModel):
    """A continual-learning chain: its stages in order and the forgetting matrix."""

    name: str
    base_model: str
    method: Method
    stages: list[ChainStage]
    summary: ForgettingSummary


# -- mixture of experts -----------------------------------------------------------------
class GateMode(StrEnum):
    hidden = "hidden"  # router rows from the experts' prompts' hidden states
    random = "random"


class MoeExpert(BaseModel):
    """One expert: a fine-tune (full model or adapter) of the base, and prompts it should get."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="Served name of a fine-tune of the base.")
    prompts: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Prompts this expert should answer (hidden gate mode needs at least one).",
    )

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, value: list[str]) -> list[str]:
        if any(not p.strip() or len(p) > 4000 for p in value):
            raise ValueError("prompts must be non-empty texts of at most 4000 characters")
        return value


class MoeRequest(BaseModel):
    """Compose fine-tunes of one base into one Mixtral-style mixture-of-experts model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The model is saved as outputs/moe_<name>/ and served as moe_<name>.",
    )
    base_model: str = Field(..., min_length=1, description="The base the experts were tuned from.")
    experts: list[MoeExpert] = Field(..., min_length=2, max_length=32)
    top_k: int = Field(2, ge=1, le=8, description="Experts each token is routed to.")
    gate_mode: GateMode = GateMode.hidden
    seed: int = 0

    @model_validator(mode="after")
    def _coherent(self) -> MoeRequest:
        if self.top_k > len(self.experts):
            raise ValueError(f"top_k {self.top_k} exceeds the {len(self.experts)} experts")
        if self.gate_mode == GateMode.hidden and any(not e.prompts for e in self.experts):
            raise ValueError("hidden gate mode needs prompts for every expert")
        names = [e.model for e in self.experts]
        if len(set(names)) != len(names):
            raise ValueError("each expert must be a different model")
        return self


class MoeJobConfig(MoeRequest):
    base: ResolvedModel
    expert_dirs: list[str]
    output_dir: str
