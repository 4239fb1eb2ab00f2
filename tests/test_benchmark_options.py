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
