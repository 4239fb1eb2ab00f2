"""The benchmark runner's configuration filters (no timing: the benchmarks themselves are not tests)."""

import pytest

from benchmarks import bench_model, run


def test_selected_keeps_only_the_requested_batch_sizes_and_precisions():
    plan = [("fp32", 1), ("fp32", 4), ("fp32", 8), ("bf16-autocast", 1)]
    assert bench_model._selected(plan, None, None, batch_at=1, precision_at=0) == plan
    assert bench_model._selected(plan, {8}, None, batch_at=1, precision_at=0) == [("fp32", 8)]
    assert bench_model._selected(plan, {1}, {"bf16-autocast"}, batch_at=1, precision_at=0) == [("bf16-autocast", 1)]
    train = [("pretrain", "fp32", 4), ("finetune", "fp32", 1)]
    assert bench_model._selected(train, {4}, {"fp32"}, batch_at=2, precision_at=1) == [("pretrain", "fp32", 4)]


@pytest.mark.parametrize("argv, message", [
    (["--only", "model", "--precisions", "fp64"], "unknown precision"),
    (["--only", "model", "--batch-sizes", "eight"], "comma-separated integers"),
    (["--only", "gpu"], "unknown item"),
])
def test_runner_rejects_bad_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        run.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_bf16_item_is_selectable_and_takes_the_model_filters():
    assert "bf16" in run.ALL_ITEMS and "bf16" in run.MODEL_ITEMS and "bf16" not in run.DEFAULT_ITEMS


def test_time_interleaved_calls_round_robin():
    from benchmarks.common import time_interleaved

    order = []
    timings = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert len(timings["a"].samples) == len(timings["b"].samples) == 3


def test_families_item_is_selectable_but_not_default():
    assert "families" in run.ALL_ITEMS and "families" not in run.DEFAULT_ITEMS


@pytest.mark.parametrize("argv, message", [
    (["--only", "families", "--families", "lavish,clip"], "unknown family"),
    (["--only", "families", "--family-parts", "forward,backward"], "unknown family part"),
])
def test_runner_rejects_unknown_families_and_parts(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        run.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_family_selection_keeps_the_requested_names_in_order():
    from benchmarks.bench_families import FAMILIES, PARTS, parse_selection

    assert parse_selection(None, FAMILIES, "family") == ["lavish", "dg-sct", "vatt"]
    assert parse_selection(" vatt, lavish ", FAMILIES, "family") == ["vatt", "lavish"]
    assert parse_selection("bf16", PARTS, "part") == ["bf16"]


def test_flop_count_includes_the_cpu_attention_kernel():
    # FlopCounterMode alone counts no FLOPs for CPU SDPA; VATT's attention is 144 of its 623 GFLOP
    import torch

    from benchmarks.bench_families import flop_counter_mode

    batch, heads, tokens, head_dim = 2, 3, 17, 8
    query = torch.randn(batch, heads, tokens, head_dim)
    with torch.inference_mode(), flop_counter_mode() as counter:
        torch.nn.functional.scaled_dot_product_attention(query, query, query)
    assert counter.get_total_flops() == 2 * 2 * batch * heads * tokens * tokens * head_dim


def test_training_memory_rows_build_the_documented_model_and_the_all_trainable_one(tmp_path):
    # the frozen-backbone row is `from_pretrained_backbone` as documented; the other row trains every parameter
    from transformers import Swinv2Model

    from benchmarks.bench_families import build_for_training
    from tests.lavish.test_modeling_lavish import tiny_backbone

    Swinv2Model(tiny_backbone()).save_pretrained(tmp_path / "swinv2")
    frozen, frozen_report = build_for_training("lavish", tmp_path, "frozen-backbone")
    everything, everything_report = build_for_training("lavish", tmp_path, "all")
    assert frozen_report.total == everything_report.total == everything_report.trainable
    assert 0 < frozen_report.trainable < frozen_report.total
    assert not any(p.requires_grad for p in frozen.lavish.backbone.swinv2.parameters())
    with pytest.raises(ValueError, match="policy"):
        build_for_training("lavish", tmp_path, "half")
