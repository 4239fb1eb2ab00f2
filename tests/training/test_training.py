"""Training entry points on real (tiny) clips: pre-training, fine-tuning, exact resume, two processes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForPreTraining, AutoProcessor, TrainerCallback, TrainingArguments

import hf_av
from hf_av.auto import AutoModelForAudioVisualClassification
from hf_av.training import AudioVisualJobArguments, run_training
from tests.data.helpers import write_clip

TINY = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "num_modality_specific_layers": 1,
    "num_shared_layers": 1,
    "audio_length": 48,
    "image_size": 32,
    "decoder_hidden_size": 16,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 32,
    "decoder_num_hidden_layers": 1,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_corpus")
    rows = []
    for i in range(8):
        path = write_clip(root / f"clip{i}.mp4", index=i % 2 * 7, num_frames=4, size=32, seconds=0.5)
        rows.append({"path": os.path.basename(path), "label": ["low", "high"][i % 2]})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    _write_noise_wav(root / "noise.wav")
    return root


def _write_noise_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> None:
    import numpy as np

    from tests.media_factory import write_wav

    write_wav(path, 0.1 * np.random.default_rng(0).standard_normal((1, int(seconds * rate))), rate, 2)


def _args(out: Path, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(out), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3,
                  logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                  dataloader_num_workers=0, disable_tqdm=True)
    values.update(overrides)
    return TrainingArguments(**values)


def _job(corpus: Path, task: str, **overrides) -> AudioVisualJobArguments:
    values = dict(task=task, train_manifest=str(corpus / "manifest.csv"), eval_manifest=str(corpus / "manifest.csv"),
                  media_root=str(corpus), config_overrides=json.dumps(TINY), eval_batch_size=4)
    values.update(overrides)
    return AudioVisualJobArguments(**values)


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    results = run_training(_job(corpus, "pretraining"), _args(out, max_steps=6))
    return out, results


def test_pretraining_from_scratch_saves_a_loadable_folder(pretrained):
    out, results = pretrained
    assert [entry["step"] for entry in results["train_loss_history"]] == [1, 2, 3, 4, 5, 6]
    recall = results["metrics"]
    assert set(recall) >= {"audio_to_visual_recall@1", "visual_to_audio_recall@1"}
    assert all(0.0 <= value <= 1.0 for value in recall.values())
    model = AutoModelForPreTraining.from_pretrained(out)
    assert type(model).__name__ == "CavMaeForPreTraining"
    processor = AutoProcessor.from_pretrained(out)
    assert processor.feature_extractor.target_length == TINY["audio_length"]
    assert json.loads((out / "hf_av_results.json").read_text())["metrics"] == recall


def test_pretraining_loss_goes_down(corpus, tmp_path):
    results = run_training(_job(corpus, "pretraining", eval_manifest=None),
                           _args(tmp_path, max_steps=16, learning_rate=3e-3))
    losses = [entry["loss"] for entry in results["train_loss_history"]]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4


def test_classification_fine_tuning_from_pretrained_folder(pretrained, corpus, tmp_path):
    pretrained_dir, _ = pretrained
    job = _job(corpus, "classification", model_name_or_path=str(pretrained_dir), config_overrides=None,
               head_learning_rate_multiplier=10.0)
    results = run_training(job, _args(tmp_path, max_steps=8, per_device_eval_batch_size=4))
    assert 0.0 <= results["metrics"]["accuracy"] <= 1.0
    model = AutoModelForAudioVisualClassification.from_pretrained(tmp_path)
    assert model.config.id2label == {0: "high", 1: "low"}


def test_fine_tuning_starts_from_the_pretrained_encoder(pretrained, corpus, tmp_path):
    from hf_av.training import build_trainer

    pretrained_dir, _ = pretrained
    job = _job(corpus, "classification", model_name_or_path=str(pretrained_dir), config_overrides=None,
               eval_manifest=None)
    trainer, _ = build_trainer(job, _args(tmp_path))
    encoder = trainer.model.cav_mae.state_dict()
    source = AutoModelForPreTraining.from_pretrained(pretrained_dir).cav_mae.state_dict()
    assert encoder.keys() == source.keys()
    for name in encoder:
        torch.testing.assert_close(encoder[name], source[name], atol=0, rtol=0, msg=name)


def test_head_learning_rate_multiplier_builds_separate_groups(pretrained, corpus, tmp_path):
    from hf_av.training import build_trainer

    pretrained_dir, _ = pretrained
    job = _job(corpus, "classification", model_name_or_path=str(pretrained_dir), config_overrides=None,
               head_learning_rate_multiplier=50.0, eval_manifest=None, modalities="audio")
    trainer, _ = build_trainer(job, _args(tmp_path, learning_rate=1e-4))
    optimizer = trainer.create_optimizer()
    rates = sorted({group["lr"] for group in optimizer.param_groups})
    assert rates == pytest.approx([1e-4, 5e-3])


class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


@pytest.mark.parametrize("augment, noise", [(False, False), (True, False), (True, True)],
                         ids=["plain", "augmented", "augmented+background-noise"])
def test_resume_reproduces_the_uninterrupted_run(corpus, tmp_path, augment, noise):
    from hf_av.training import build_trainer

    # with augmentation the random frames, noise and shifts after the checkpoint must be the same ones too
    extra = {"background_noise": str(corpus / "noise.wav"), "background_noise_probability": 1.0} if noise else {}
    job = _job(corpus, "pretraining", eval_manifest=None, augment=augment, **extra)
    straight_args = _args(tmp_path / "straight", max_steps=6)
    straight, _ = build_trainer(job, straight_args)
    straight.train()
    straight_losses = [e["loss"] for e in straight.state.log_history if "loss" in e]

    interrupted_args = _args(tmp_path / "resumed", max_steps=6, save_strategy="steps", save_steps=100)
    interrupted, _ = build_trainer(job, interrupted_args)
    interrupted.add_callback(_StopAt(3))
    interrupted.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-3"
    assert checkpoint.is_dir()

    resumed, _ = build_trainer(job, _args(tmp_path / "resumed", max_steps=6))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert resumed_losses[-3:] == pytest.approx(straight_losses[-3:], abs=1e-6)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(corpus, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "hf_av.training",
        "--task", "pretraining", "--train_manifest", str(corpus / "manifest.csv"), "--media_root", str(corpus),
        "--config_overrides", json.dumps(TINY), "--output_dir", str(out), "--max_steps", "2",
        "--per_device_train_batch_size", "2", "--report_to", "none", "--save_strategy", "no", "--use_cpu",
        "--logging_steps", "1", "--disable_tqdm", "true",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").is_file()


def test_preprocess_once_trains_epochs_over_in_memory_examples(corpus, tmp_path):
    job = _job(corpus, "classification", preprocess_once=True, modalities="audio")
    args = _args(tmp_path, max_steps=-1, num_train_epochs=2, per_device_train_batch_size=4,
                 per_device_eval_batch_size=4)
    results = run_training(job, args)
    assert [entry["step"] for entry in results["train_loss_history"]] == [1, 2, 3, 4]  # 8 clips / 4 x 2 epochs
    assert 0.0 <= results["metrics"]["accuracy"] <= 1.0


def test_preprocess_workers_decode_in_parallel_into_manifest_order(corpus, tmp_path):
    from hf_av.training import build_trainer
    from hf_av.training.run import _PREPROCESSED_CACHE

    datasets = []
    for workers in (0, 2):
        _PREPROCESSED_CACHE.clear()  # decode again instead of reusing the first run's tensors
        job = _job(corpus, "classification", preprocess_once=True, preprocess_workers=workers)
        trainer, _ = build_trainer(job, _args(tmp_path / str(workers), max_steps=1))
        datasets.append(trainer.train_dataset)
    in_process, parallel = datasets
    assert len(parallel) == len(in_process) == 8
    for a, b in zip(in_process, parallel):
        assert a["sample_id"] == b["sample_id"] and "_hf_av_row" not in b
        for key in ("input_values", "pixel_values", "labels"):
            torch.testing.assert_close(a[key], b[key])
    with pytest.raises(ValueError, match="preprocess_workers"):
        _job(corpus, "classification", preprocess_workers=-1)


def test_several_comma_separated_manifests_train_together(corpus, tmp_path):
    # a second manifest in another folder, with its paths relative to that folder
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(corpus / "clip0.mp4", other / "extra.mp4")
    (other / "manifest.csv").write_text("path,label\nextra.mp4,low\n")
    from hf_av.training import read_manifests

    rows = read_manifests(f"{corpus / 'manifest.csv'}, {other / 'manifest.csv'}")
    assert len(rows) == 9 and rows[-1]["path"] == str(other / "extra.mp4")
    job = _job(corpus, "classification", preprocess_once=True, modalities="visual", media_root=None,
               train_manifest=f"{corpus / 'manifest.csv'},{other / 'manifest.csv'}")
    args = _args(tmp_path / "out", max_steps=-1, num_train_epochs=1, per_device_train_batch_size=3,
                 per_device_eval_batch_size=3)
    results = run_training(job, args)
    assert [entry["step"] for entry in results["train_loss_history"]] == [1, 2, 3]  # 9 clips / 3
    with pytest.raises(ValueError, match="no manifest path"):
        read_manifests(" , ")


def test_background_noise_job_settings(corpus, tmp_path):
    from hf_av.training import build_trainer

    with pytest.raises(ValueError, match="background_noise_snr"):
        _job(corpus, "classification", background_noise=str(corpus / "noise.wav"), background_noise_snr="loud")
    with pytest.raises(ValueError, match="background_noise_probability"):
        _job(corpus, "classification", background_noise=str(corpus / "noise.wav"), background_noise_probability=2)
    job = _job(corpus, "classification", preprocess_once=True, background_noise=str(tmp_path / "missing.wav"))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        build_trainer(job, _args(tmp_path / "a", max_steps=1))
    # without --augment the noise is the only augmentation: no frame draw, no fbank noise, no shift
    job = _job(corpus, "classification", preprocess_once=True, background_noise=str(corpus), background_noise_snr="5")
    trainer, _ = build_trainer(job, _args(tmp_path / "b", max_steps=1))
    augmentation = trainer.augmentation
    assert (augmentation.random_frame, augmentation.fbank_noise, augmentation.time_roll) == (False, 0.0, False)
    assert augmentation.background_noise.snr_db == (5.0, 5.0)
    assert len(augmentation.background_noise.noise_log_power) == 1  # the folder's one audio file


def test_augment_draws_a_training_frame_and_leaves_evaluation_alone(corpus, tmp_path):
    from hf_av.training import build_trainer

    job = _job(corpus, "classification", preprocess_once=True, augment=True)
    args = _args(tmp_path, max_steps=-1, num_train_epochs=1, per_device_train_batch_size=4,
                 per_device_eval_batch_size=4)
    trainer, eval_dataset = build_trainer(job, args)
    assert trainer.train_dataset[0]["pixel_values"].dim() == 4  # every frame kept in memory
    train_batch = next(iter(trainer.get_train_dataloader()))
    assert train_batch["pixel_values"].dim() == 5  # [B, frames, 3, H, W] until the training step draws one
    assert trainer.augmentation.augment_batch(train_batch)["pixel_values"].dim() == 4
    eval_batch = next(iter(trainer.get_eval_dataloader()))
    assert eval_batch["pixel_values"].dim() == 5  # the multi-frame evaluation, never augmented
    results = run_training(job, _args(tmp_path / "run", max_steps=-1, num_train_epochs=1,
                                      per_device_train_batch_size=4, per_device_eval_batch_size=4))
    assert 0.0 <= results["metrics"]["accuracy"] <= 1.0
    pre = run_training(_job(corpus, "pretraining", preprocess_once=True, augment=True),
                       _args(tmp_path / "pre", max_steps=-1, num_train_epochs=1, per_device_train_batch_size=4))
    assert len(pre["train_loss_history"]) == 2
