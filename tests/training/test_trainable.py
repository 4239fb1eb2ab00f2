"""Trainable-parameter policy: `freeze_except` on its own, and applied and reported by the training entry point."""

import json

import pytest
import torch
from torch import nn
from transformers import AutoModelForPreTraining, HfArgumentParser, TrainingArguments

import hf_av
from hf_av.training import AudioVisualJobArguments, run_training
from hf_av.training.run import apply_trainable_policy
from modeling.common.trainable import freeze_except, trainable_report
from tests.training.test_training import TINY, _args, _job, corpus  # noqa: F401  (module fixture)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.adapter = nn.Linear(4, 2)
        self.head = nn.Linear(2, 3)
        self.fixed = nn.Parameter(torch.zeros(5), requires_grad=False)  # e.g. a sin-cos table


def test_freeze_except_reports_counts_and_matches():
    model = Toy()
    report = freeze_except(model, ["adapter.*", "head.weight"])
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained == ["adapter.weight", "adapter.bias", "head.weight"]
    assert report.trainable == 4 * 2 + 2 + 2 * 3
    assert report.total == 2 * (4 * 4 + 4) + (4 * 2 + 2) + (2 * 3 + 3) + 5
    assert report.trainable_names == ("adapter.weight", "adapter.bias", "head.weight")
    assert report.matched == {"adapter.*": ("adapter.weight", "adapter.bias"), "head.weight": ("head.weight",)}
    assert report.frozen == report.total - report.trainable
    data = report.to_dict()
    assert json.loads(json.dumps(data))["trainable"] == report.trainable
    assert "trainable parameters: 16 of 64" in report.summary()


def test_star_crosses_dots_and_none_changes_nothing():
    model = Toy()
    assert freeze_except(model, ["backbone*bias"]).trainable_names == ("backbone.0.bias", "backbone.1.bias")
    fresh = Toy()
    report = freeze_except(fresh, None)
    assert report.patterns is None and report.trainable == report.total - 5  # the fixed table stays fixed


def test_a_pattern_that_matches_nothing_is_named_and_the_model_is_left_unchanged():
    model = Toy()
    expected = r"\['adaptor\.\*'\] match no parameter of Toy \(names look like: fixed, backbone"
    with pytest.raises(ValueError, match=expected):
        freeze_except(model, ["head.*", "adaptor.*"])
    assert all(p.requires_grad for n, p in model.named_parameters() if n != "fixed")
    with pytest.raises(ValueError, match="empty"):
        freeze_except(model, [])
    with pytest.raises(ValueError, match="list of glob patterns"):
        freeze_except(model, "head.*")


def test_the_policy_never_unfreezes_what_the_model_keeps_fixed():
    model = Toy()
    report = freeze_except(model, ["*"])
    assert not model.fixed.requires_grad and report.trainable == report.total - 5
    assert "fixed" in report.matched["*"]


def test_tied_parameters_train_when_any_name_matches():
    model = Toy()
    model.tied = model.head  # the same tensors under a second name
    report = freeze_except(model, ["tied.weight"])
    assert model.head.weight.requires_grad and report.trainable == 6
    assert report.total == trainable_report(Toy()).total  # shared tensors counted once


def test_config_policy_is_applied_and_the_command_line_overrides_it():
    model = hf_av.CavMaeForPreTraining(hf_av.CavMaeConfig(**TINY))
    model.config.trainable_parameters = ["decoder.*"]  # the field the config will carry
    report = apply_trainable_policy(model)
    assert report.patterns == ("decoder.*",) and all(n.startswith("decoder.") for n in report.trainable_names)
    report = apply_trainable_policy(hf_av.CavMaeForPreTraining(hf_av.CavMaeConfig(**TINY)), ["cav_mae.joint_*"])
    assert report.trainable_names == ("cav_mae.joint_layernorm.weight", "cav_mae.joint_layernorm.bias")
    parser = HfArgumentParser((AudioVisualJobArguments, TrainingArguments))
    job, _ = parser.parse_args_into_dataclasses(
        args=["--task", "pretraining", "--train_manifest", "m.csv", "--output_dir", "out",
              "--trainable_parameters", "decoder.*", "cav_mae.shared_layers.*"]
    )
    assert job.trainable_parameters == ["decoder.*", "cav_mae.shared_layers.*"]


def test_two_training_steps_move_only_the_matched_parameters(corpus, tmp_path):  # noqa: F811
    start = tmp_path / "start"
    torch.manual_seed(0)
    hf_av.CavMaeForPreTraining(hf_av.CavMaeConfig(**TINY)).save_pretrained(start)
    before = AutoModelForPreTraining.from_pretrained(start).state_dict()
    policy = ["cav_mae.shared_layers.*", "decoder.layers.0.mlp.*"]
    out = tmp_path / "out"
    results = run_training(_job(corpus, "pretraining", model_name_or_path=str(start), trainable_parameters=policy,
                                eval_manifest=None),
                           _args(out, max_steps=2, learning_rate=1e-2))
    after = AutoModelForPreTraining.from_pretrained(out).state_dict()
    reference = AutoModelForPreTraining.from_pretrained(start)
    trainable = {n for n, p in reference.named_parameters() if p.requires_grad and
                 any(n.startswith(prefix.rstrip("*")) for prefix in policy)}
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved == trainable, (sorted(moved ^ trainable))

    expected_trainable = sum(before[n].numel() for n in trainable)
    expected_total = sum(p.numel() for p in reference.parameters())
    report = json.loads((out / "hf_av_results.json").read_text())["trainable_parameters"]
    assert report["patterns"] == policy
    assert (report["trainable"], report["total"]) == (expected_trainable, expected_total)
    names = [n for n, _ in reference.named_parameters()]
    assert report["matched"] == {p: sum(n.startswith(p.rstrip("*")) for n in names) for p in policy}
    assert results["trainable_parameters"]["trainable"] == expected_trainable
    card = (out / "README.md").read_text()
    assert f"Trainable parameters: {expected_trainable:,} of {expected_total:,}" in card
    assert "`cav_mae.shared_layers.*`" in card and "license: bsd-2-clause" in card
