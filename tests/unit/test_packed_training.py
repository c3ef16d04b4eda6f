"""Packed rows train exactly like separate examples, and the loss only where labels are."""

from __future__ import annotations

import pytest
import torch

from aift.training.examples import IGNORE, Collator
from aift.training.packed_attention import (
    example_bounds,
    supports_packed_attention,
    use_packed_attention,
)
from aift.training.supervised_loss import next_token_targets, supervised_trainer_class

LENGTHS = (7, 12, 5)


@pytest.fixture()
def tiny_llama():
    """A random 2-layer Llama with grouped-query attention, in training mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config)
    model.config.use_cache = False
    return model.train()


def _examples() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, 128, (n,), generator=generator) for n in LENGTHS]


def _packed(examples: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.cat(examples).unsqueeze(0)
    positions = torch.cat([torch.arange(len(e)) for e in examples]).unsqueeze(0)
    return ids, positions


def test_example_bounds_split_where_positions_restart() -> None:
    assert example_bounds(torch.tensor([0, 1, 2, 0, 1, 0])) == [0, 3, 5, 6]
    assert example_bounds(torch.tensor([3, 4, 0, 1])) == [0, 2, 4]


@pytest.mark.parametrize("attention", ["packed", "sdpa"])
def test_packed_row_equals_examples_run_alone(tiny_llama, attention: str) -> None:
    examples = _examples()
    with torch.no_grad():
        alone = torch.cat([tiny_llama(input_ids=e.unsqueeze(0)).logits for e in examples], 1)
        if attention == "packed":
            use_packed_attention(tiny_llama)
        ids, positions = _packed(examples)
        packed = tiny_llama(input_ids=ids, position_ids=positions).logits
    assert torch.allclose(packed, alone, atol=1e-5)


def test_packed_attention_handles_a_padded_batch_of_rows(tiny_llama) -> None:
    examples = _examples()
    rows = [
        {
            "input_ids": torch.cat(examples[:2]).tolist(),
            "labels": [IGNORE] * 19,
            "position_ids": list(range(7)) + list(range(12)),
        },
        {"input_ids": examples[2].tolist(), "labels": [IGNORE] * 5, "position_ids": list(range(5))},
    ]
    batch = Collator(pad_id=0, packed=True)(rows)
    use_packed_attention(tiny_llama)
    with torch.no_grad():
        logits = tiny_llama(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = tiny_llama(input_ids=examples[2].unsqueeze(0)).logits
    assert torch.allclose(logits[1:, :5], alone, atol=1e-5)


def test_next_token_targets_keep_only_positions_before_a_label() -> None:
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6, IGNORE], [IGNORE, 9, IGNORE, IGNORE, IGNORE]])
    keep, targets = next_token_targets(labels)
    assert keep.tolist() == [0, 1, 2]
    assert targets.tolist() == [[IGNORE, 5, 6], [9, IGNORE, IGNORE]]


def test_next_token_targets_without_labels_keep_one_ignored_position() -> None:
    keep, targets = next_token_targets(torch.full((1, 4), IGNORE))
    assert keep.tolist() == [3] and targets.tolist() == [[IGNORE]]


def test_supervised_loss_equals_the_models_own_loss(tiny_llama, tmp_path) -> None:
    from transformers import TrainingArguments

    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(2))
    labels = torch.full_like(ids, IGNORE)
    labels[0, 5:9] = ids[0, 5:9]
    labels[1, 12:] = ids[1, 12:]
    trainer = supervised_trainer_class()(
        model=tiny_llama,
        args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
    )
    with torch.no_grad():
        ours = trainer.compute_loss(tiny_llama, {"input_ids": ids, "labels": labels})
        reference = tiny_llama(input_ids=ids, labels=labels).loss
    assert torch.allclose(ours, reference, atol=1e-6)


def test_packed_attention_only_for_plain_attention_architectures() -> None:
    from transformers import GemmaConfig, LlamaConfig, MistralConfig

    assert supports_packed_attention(LlamaConfig(), 1024)
    assert not supports_packed_attention(GemmaConfig(), 1024)
    assert supports_packed_attention(MistralConfig(sliding_window=4096), 1024)
    assert not supports_packed_attention(MistralConfig(sliding_window=512), 1024)


def _packed_rows() -> list[dict]:
    """Two packed rows of different lengths, each with two examples, and different
    numbers of label tokens (so a mean of per-row means would differ from the step's)."""
    generator = torch.Generator().manual_seed(3)
    rows = []
    for lengths, answer in (((9, 11), 3), ((6, 7), 1)):
        ids = torch.randint(0, 128, (sum(lengths),), generator=generator).tolist()
        labels = [IGNORE] * len(ids)
        for start in (0, lengths[0]):
            labels[start + 3 : start + 3 + answer] = ids[start + 3 : start + 3 + answer]
        positions = [p for n in lengths for p in range(n)]
        rows.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return rows


def _one_sgd_step(  # noqa: ANN001
    model, tmp_path, rows_per_pass: int, passes: int, pass_tokens=None, penalty=None
) -> dict:
    from transformers import TrainingArguments

    trainer = supervised_trainer_class(penalty, pass_tokens)(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            use_cpu=True,
            report_to=[],
            optim="sgd",
            learning_rate=0.5,
            max_steps=1,
            per_device_train_batch_size=rows_per_pass,
            gradient_accumulation_steps=passes,
            remove_unused_columns=False,
            label_names=["labels"],
            save_strategy="no",
            disable_tqdm=True,
        ),
        train_dataset=_packed_rows(),
        data_collator=Collator(0, packed=True),
    )
    trainer.train()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_one_row_per_pass_makes_the_same_step_as_the_whole_batch(tiny_llama, tmp_path) -> None:
    """The CPU's micro-batches (one packed row per pass, the batch accumulated) change
    the weights exactly as the whole batch in one pass: same gradient, same loss scale."""
    import copy

    use_packed_attention(tiny_llama)
    before = {name: p.detach().clone() for name, p in tiny_llama.named_parameters()}
    whole = _one_sgd_step(copy.deepcopy(tiny_llama), tmp_path / "whole", 2, 1)
    rows = _one_sgd_step(copy.deepcopy(tiny_llama), tmp_path / "rows", 1, 2)
    assert any(not torch.equal(whole[n], before[n]) for n in before), "the step moved weights"
    for name in before:
        assert torch.allclose(whole[name], rows[name], atol=1e-6), name


def test_packed_runs_pass_one_row_at_a_time_on_a_cpu_only() -> None:
    from aift.training.schemas import TrainingJobConfig
    from aift.training.trainer import micro_batches

    base = {"requested": "m", "name": "m", "source": "local", "format": "hf", "path": "/m"}
    config = TrainingJobConfig(
        base_model="m", dataset="d", output_dir="/o", base=base, batch_size=4,
        gradient_accumulation=2,
    )  # fmt: skip
    assert micro_batches(config, on_gpu=False) == (1, 8)
    assert micro_batches(config, on_gpu=True) == (4, 2)
    unpacked = config.model_copy(update={"packing": False})
    assert micro_batches(unpacked, on_gpu=False) == (4, 2)
    # preference pairs pass one at a time on a CPU; KTO and GRPO keep their batches
    for objective, expected in (
        ("dpo", (1, 8)),
        ("simpo", (1, 8)),
        ("kto", (4, 2)),
        ("grpo", (4, 2)),
    ):
        run = unpacked.model_copy(update={"objective": objective})
        assert micro_batches(run, on_gpu=False) == expected, objective
        assert micro_batches(run, on_gpu=True) == (4, 2), objective


def test_rows_cut_between_examples_make_the_same_step(tiny_llama, tmp_path) -> None:
    """A packed row trained in passes of at most 12 tokens (cut between its examples)
    changes the weights as the whole row does, with a penalty still counted once."""
    import copy

    use_packed_attention(tiny_llama)
    before = {name: p.detach().clone() for name, p in tiny_llama.named_parameters()}

    def penalty() -> torch.Tensor:  # pulls every weight towards 0, counted once per step
        return 0.1 * sum(p.pow(2).sum() for p in tiny_llama.parameters())

    for with_penalty in (None, penalty):
        whole = _one_sgd_step(copy.deepcopy(tiny_llama), tmp_path / "w", 1, 2, None, with_penalty)
        cut = _one_sgd_step(copy.deepcopy(tiny_llama), tmp_path / "c", 1, 2, 12, with_penalty)
        assert any(not torch.equal(whole[n], before[n]) for n in before), "the step moved weights"
        for name in before:
            assert torch.allclose(whole[name], cut[name], atol=1e-6), name


def test_cut_points_keep_examples_whole() -> None:
    from aift.training.passes import cut_points, example_starts, split_row

    assert cut_points([0, 100, 300, 700], 1000, 512) == [0, 300, 700, 1000]
    assert cut_points([0, 600], 700, 512) == [0, 600, 700]  # a long example passes alone
    assert cut_points([0, 10, 20], 30, 512) == [0, 30]
    assert example_starts(torch.tensor([[3, 4, 0, 1]])) == [0, 2]
    batch = {
        "input_ids": torch.arange(9).unsqueeze(0),
        "labels": torch.arange(9).unsqueeze(0),
        "position_ids": torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0, 1]]),
    }
    pieces = split_row(batch, 5)
    assert [p["input_ids"].tolist() for p in pieces] == [[[0, 1, 2]], [[3, 4, 5, 6]], [[7, 8]]]
    assert all(p["position_ids"][0, 0] == 0 for p in pieces)
    assert split_row(batch, 9) == [batch]


def test_an_examples_first_token_is_never_a_target_in_a_packed_row() -> None:
    from aift.training.examples import Tokenized, pack

    items = [Tokenized([1, 2, 3], [1, 2, 3], False), Tokenized([4, 5], [4, 5], False)]
    (row,) = pack(items, 8, seed=0)
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
    assert [row["labels"][i] for i in starts] == [IGNORE, IGNORE]
    assert sorted(t for t in row["labels"] if t != IGNORE) == [2, 3, 5]
