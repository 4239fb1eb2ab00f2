"""Event-localisation fine-tuning of LAVisH and DG-SCT through the shared entry point (`hf-av train`, Trainer) on a
streamed manifest of real clips with per-second segment labels: the config's trainable-parameter policy is applied
and reported, only adapters / DG-SCT modules and the head move, a resumed run equals the uninterrupted one, and a
fresh model is built around local pretrained backbone folders from the command line."""

import json
import os

import pytest
import torch
from transformers import ClapAudioModel, Swinv2Config, Swinv2Model, TrainerCallback, TrainingArguments

import hf_av
from hf_av.auto import AutoModelForAudioVisualEventLocalization
from hf_av.training import AudioVisualJobArguments, build_trainer, run_training
from modeling.common.htsat_adapter_host import HtsatConfig
from tests.pipelines._event_localization_models import (
    DG_SCT_TINY,
    EVENT_LABELS,
    LAVISH_TINY,
    SEGMENTS,
    tiny_overrides,
    write_segment_corpus,
)

FAMILIES = ["lavish", "dg-sct"]
PAPER_NUMBER = {"lavish": "81.1", "dg-sct": "82.2"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny models on a shared 2-core machine: intra-op threads only spin against each other
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_segment_corpus(tmp_path_factory.mktemp("segment_corpus"), num_clips=4)


def _args(out, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(out), max_steps=3, per_device_train_batch_size=2, learning_rate=1e-2,
                  logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                  dataloader_num_workers=0, disable_tqdm=True)
    values.update(overrides)
    return TrainingArguments(**values)


def _job(manifest, model_type, **overrides) -> AudioVisualJobArguments:
    values = dict(task="event-localization", train_manifest=str(manifest), eval_manifest=str(manifest),
                  model_type=model_type, config_overrides=tiny_overrides(model_type), eval_batch_size=4)
    values.update(overrides)
    return AudioVisualJobArguments(**values)


def _head_and_adapter_names(model_type, names):
    if model_type == "lavish":
        return {n for n in names if ".adapter_blocks." in n or n.startswith("classifier.")}
    return {n for n in names if ".cross_modal_blocks." in n or n.startswith(("temporal_attention.", "event_head."))}


@pytest.fixture(scope="module", params=FAMILIES)
def trained(request, manifest, tmp_path_factory):
    model_type = request.param
    out = tmp_path_factory.mktemp(f"trained-{model_type}")
    job = _job(manifest, model_type)
    # the initial weights of the run (build_trainer seeds the model's initialisation with --seed)
    initial, _ = build_trainer(job, _args(tmp_path_factory.mktemp("initial")))
    initial_state = {name: p.detach().clone() for name, p in initial.model.named_parameters()}
    results = run_training(job, _args(out))
    return model_type, out, results, initial_state


def test_training_applies_and_reports_the_config_policy(trained):
    model_type, out, results, initial_state = trained
    model = AutoModelForAudioVisualEventLocalization.from_pretrained(out)
    assert type(model).__name__ == hf_av.get_family(model_type).tasks["event-localization"]
    names = [name for name, _ in model.named_parameters()]
    expected_trainable = _head_and_adapter_names(model_type, names)
    report = results["trainable_parameters"]
    assert report["patterns"] == model.config.trainable_parameters
    assert set(report["trainable_names"]) == expected_trainable
    parameters = dict(model.named_parameters())
    assert report["trainable"] == sum(parameters[n].numel() for n in expected_trainable)
    assert report["total"] == sum(p.numel() for p in parameters.values())
    assert 0 < report["trainable"] < report["total"]

    moved = {n for n, p in parameters.items() if not torch.equal(p.detach(), initial_state[n])}
    # nothing frozen moved (the backbones are bit-identical); the head certainly did
    assert moved <= expected_trainable, sorted(moved - expected_trainable)[:5]
    head = "classifier." if model_type == "lavish" else "event_head."
    assert any(n.startswith(head) for n in moved)
    assert len(results["train_loss_history"]) == 3


def test_trained_folder_has_labels_metrics_and_a_card(trained):
    model_type, out, results, _ = trained
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(out)
    # background is the last class, as AVE and DG-SCT's head have it
    assert [config.id2label[i] for i in range(len(EVENT_LABELS))] == ["dog", "engine", "background"]
    assert config.num_segments == SEGMENTS
    processor = AutoProcessor.from_pretrained(out)
    assert processor.num_segments == SEGMENTS
    accuracy = results["metrics"]["segment_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and results["metrics"]["num_clips"] == 4
    saved = json.loads((out / "hf_av_results.json").read_text())
    assert saved["trainable_parameters"]["trainable"] == results["trainable_parameters"]["trainable"]
    card = (out / "README.md").read_text()
    trainable = results["trainable_parameters"]
    assert f"Trainable parameters: {trainable['trainable']:,} of {trainable['total']:,}" in card
    assert PAPER_NUMBER[model_type] in card and "pipeline_tag: video-classification" in card
    assert "audio-visual-event-localization" in card


class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


@pytest.mark.parametrize("model_type", FAMILIES)
def test_resume_reproduces_the_uninterrupted_run(manifest, tmp_path, model_type):
    job = _job(manifest, model_type, eval_manifest=None)
    straight, _ = build_trainer(job, _args(tmp_path / "straight", max_steps=4))
    straight.train()
    straight_losses = [e["loss"] for e in straight.state.log_history if "loss" in e]

    interrupted, _ = build_trainer(job, _args(tmp_path / "resumed", max_steps=4, save_strategy="steps",
                                              save_steps=100))
    interrupted.add_callback(_StopAt(2))
    interrupted.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-2"
    assert checkpoint.is_dir()

    resumed, _ = build_trainer(job, _args(tmp_path / "resumed", max_steps=4))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert resumed_losses[-2:] == pytest.approx(straight_losses[-2:], abs=1e-6)
    straight_state, resumed_state = straight.model.state_dict(), resumed.model.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    for name in straight_state:  # BatchNorm statistics of the adapters included
        torch.testing.assert_close(straight_state[name], resumed_state[name], atol=1e-6, rtol=0, msg=name)


# ---------------------------------------------------------------------------------------------------------------------
# `hf-av train` from the command line: from scratch and around pretrained backbone folders
# ---------------------------------------------------------------------------------------------------------------------
def _printed_summary(capsys) -> dict:
    """The JSON summary `hf-av train` prints last (Trainer's log lines come before it)."""
    out = capsys.readouterr().out
    return json.loads(out[out.rindex('{\n  "metrics"'):])


def _cli_train(manifest, out, *extra):
    from hf_av.cli import main

    argv = ["train", "--task", "event-localization", "--train_manifest", str(manifest), "--output_dir", str(out),
            "--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2",
            "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true", *extra]
    return main([str(a) for a in argv])


def test_cli_trains_lavish_around_a_local_swinv2_folder(manifest, tmp_path, capsys):
    backbone_dir = tmp_path / "swinv2"
    torch.manual_seed(1)
    backbone = Swinv2Model(Swinv2Config(**{k: v for k, v in LAVISH_TINY["backbone_config"].items()
                                           if k != "model_type"}))
    backbone.save_pretrained(backbone_dir)
    settings = {k: v for k, v in LAVISH_TINY.items() if k != "backbone_config"}
    out = tmp_path / "out"
    assert _cli_train(manifest, out, "--model_type", "lavish", "--backbone_name_or_path", backbone_dir,
                      "--config_overrides", json.dumps(settings)) == 0
    printed = _printed_summary(capsys)
    assert printed["trainable_parameters"]["patterns"] == ["*adapter_blocks.*", "classifier.*"]
    model = AutoModelForAudioVisualEventLocalization.from_pretrained(out)
    for key, tensor in backbone.state_dict().items():  # the frozen backbone is the folder's, unchanged
        assert torch.equal(model.lavish.backbone.swinv2.state_dict()[key], tensor), key
    assert model.config.adapter_reduction_factor == 4 and model.config.id2label[2] == "background"
    assert "Built around the pretrained backbone(s)" in (out / "README.md").read_text()


def test_cli_trains_dg_sct_around_local_swinv2_and_htsat_folders(manifest, tmp_path, capsys):
    torch.manual_seed(2)
    vision = Swinv2Model(Swinv2Config(**DG_SCT_TINY["vision_config"]))
    audio = ClapAudioModel(HtsatConfig(**DG_SCT_TINY["audio_config"]))
    vision.save_pretrained(tmp_path / "swinv2")
    audio.save_pretrained(tmp_path / "htsat")
    settings = {k: v for k, v in DG_SCT_TINY.items() if k not in ("vision_config", "audio_config")}
    out = tmp_path / "out"
    assert _cli_train(manifest, out, "--model_type", "dg-sct", "--backbone_name_or_path", tmp_path / "swinv2",
                      "--audio_backbone_name_or_path", tmp_path / "htsat",
                      "--config_overrides", json.dumps(settings)) == 0
    printed = _printed_summary(capsys)
    assert printed["trainable_parameters"]["trainable"] < printed["trainable_parameters"]["total"]
    model = AutoModelForAudioVisualEventLocalization.from_pretrained(out)
    for key, tensor in vision.state_dict().items():
        assert torch.equal(model.dg_sct.visual_backbone.swinv2.state_dict()[key], tensor), key
    for key, tensor in audio.audio_encoder.state_dict().items():
        if key.startswith("batch_norm.") and not key.endswith(("weight", "bias")):
            continue  # the frozen spectrogram batch norm still updates its statistics in train mode, as the original
        assert torch.equal(model.dg_sct.audio_backbone.audio_encoder.state_dict()[key], tensor), key


def test_cli_trains_a_saved_folder(manifest, tmp_path, capsys):
    from tests.pipelines._event_localization_models import save_tiny_event_model

    folder = save_tiny_event_model(tmp_path / "start", "lavish")
    out = tmp_path / "out"
    assert _cli_train(manifest, out, "--model_name_or_path", folder) == 0
    assert _printed_summary(capsys)["output_dir"] == str(out)
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()


# ---------------------------------------------------------------------------------------------------------------------
# clear errors
# ---------------------------------------------------------------------------------------------------------------------
def test_dg_sct_needs_both_backbone_folders(manifest, tmp_path):
    job = _job(manifest, "dg-sct", backbone_name_or_path=str(tmp_path))
    with pytest.raises(ValueError, match="audio_backbone_name_or_path"):
        build_trainer(job, _args(tmp_path / "out"))


def test_lavish_has_no_audio_backbone(manifest, tmp_path):
    job = _job(manifest, "lavish", backbone_name_or_path=str(tmp_path), audio_backbone_name_or_path=str(tmp_path))
    with pytest.raises(ValueError, match="one backbone over frames and spectrograms"):
        build_trainer(job, _args(tmp_path / "out"))


def test_backbone_and_model_folder_are_exclusive(manifest, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        _job(manifest, "lavish", backbone_name_or_path="a", model_name_or_path="b")


def test_clip_labels_are_refused_for_event_localization(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\nclip.mp4,dog\n")
    with pytest.raises(ValueError, match=r"per-segment labels \(a `segment_labels` column.*single labels"):
        build_trainer(_job(tmp_path / "m.csv", "lavish", eval_manifest=None), _args(tmp_path / "out"))


@pytest.mark.parametrize("model_type", FAMILIES)
def test_segment_labels_must_match_the_processor_segments(manifest, tmp_path, model_type):
    rows = manifest.read_text().splitlines()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",dog;dog;dog;background"
    bad = manifest.parent / f"bad-{model_type}.csv"
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"row 1 \(.*clip1\.mp4\): 4 segment labels, but the processor cuts every "
                                         r"clip into 3 segments"):
        build_trainer(_job(bad, model_type, eval_manifest=None), _args(tmp_path / "out"))
    assert os.path.exists(manifest)


def test_evaluation_agrees_with_the_pipeline_on_the_trained_folder(trained, manifest):
    """The training run's segment accuracy equals the one of the pipeline's per-segment labels on the same clips."""
    from transformers import pipeline

    from hf_av.training import read_manifests

    model_type, out, results, _ = trained
    localizer = pipeline("audio-visual-event-localization", model=str(out))
    label2id = localizer.model.config.label2id
    correct = total = 0
    for row in read_manifests(str(manifest)):
        predicted = [segment["label_id"] for segment in localizer(row["path"])["segments"]]
        reference = [label2id[name] for name in row["segment_labels"]]
        correct += sum(p == r for p, r in zip(predicted, reference, strict=True))
        total += len(reference)
    assert results["metrics"]["segment_accuracy"] == pytest.approx(correct / total, abs=1e-9)


@pytest.mark.parametrize("model_type, head", [("lavish", {"classifier."}),
                                              ("dg-sct", {"temporal_attention.", "event_head."})])
def test_head_learning_rate_multiplier_scales_the_whole_head(manifest, tmp_path, model_type, head):
    trainer, _ = build_trainer(_job(manifest, model_type, eval_manifest=None, head_learning_rate_multiplier=10.0),
                               _args(tmp_path / "out", learning_rate=1e-3))
    optimizer = trainer.create_optimizer()
    head_params = {id(p) for n, p in trainer.model.named_parameters() if n.startswith(tuple(head)) and p.requires_grad}
    for group in optimizer.param_groups:
        in_head = {id(p) in head_params for p in group["params"]}
        assert len(in_head) == 1  # a group is all head or no head
        assert group["lr"] == pytest.approx(1e-2 if in_head.pop() else 1e-3)
    assert head_params


def test_trained_card_of_a_model_built_around_hub_backbones():
    from hf_av.hub.model_card import render_model_card, trained_model_card
    from tests.pipelines._event_localization_models import tiny_config

    results = {
        "job": {"task": "event-localization", "train_manifest": "ave/train.csv", "eval_manifest": None,
                "backbone_name_or_path": "microsoft/swinv2-large-patch4-window12-192-22k",
                "audio_backbone_name_or_path": "some-org/htsat-audioset"},
        "trainable_parameters": {"trainable": 1_000, "total": 100_000, "patterns": ["*cross_modal_blocks.*"]},
        "metrics": {"segment_accuracy": 0.5},
    }
    card = str(render_model_card(trained_model_card(tiny_config("dg-sct"), results, "DgSctForAudioVisualEventLocalization")))
    assert "base_model: microsoft/swinv2-large-patch4-window12-192-22k" in card
    assert "`some-org/htsat-audioset` (audio)" in card and "frozen; adapters and head newly initialised" in card
    assert "Trainable parameters: 1,000 of 100,000 (1.00%)" in card and "segment_accuracy = 0.5" in card
    assert "82.2" in card and "pipeline_tag: video-classification" in card
