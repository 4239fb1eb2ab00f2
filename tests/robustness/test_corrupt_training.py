"""A training run over a manifest in which a quarter of the clips are damaged finishes and names what it skipped."""

from __future__ import annotations

import csv
import json
from pathlib import Path
import logging

import pytest
from transformers import TrainingArguments

from hf_av.training import AudioVisualJobArguments, run_training
from tests.data.helpers import garble, truncate, write_clip

TINY = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64, "num_modality_specific_layers": 1,
        "num_shared_layers": 1, "audio_length": 48, "image_size": 32, "decoder_hidden_size": 16,
        "decoder_num_attention_heads": 2, "decoder_intermediate_size": 32, "decoder_num_hidden_layers": 1}
NUM_CLIPS, NUM_DAMAGED = 8, 2  # 25 %


@pytest.fixture(scope="module")
def damaged_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged_corpus")
    names = []
    for i in range(NUM_CLIPS):
        names.append(f"clip{i}.mp4")
        write_clip(root / names[-1], index=i % 2 * 7, num_frames=4, size=32, seconds=0.5)
    # Clip 3: cut at 40 % (the mp4 index at the end is lost); clip 6: header bytes garbled.
    truncate(root / "clip3.mp4", root / "clip3_cut.mp4", 0.4)
    garble(root / "clip6.mp4", root / "clip6_garbled.mp4", seed=3)
    names[3], names[6] = "clip3_cut.mp4", "clip6_garbled.mp4"
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows({"path": name, "label": ["low", "high"][i % 2]} for i, name in enumerate(names))
    return root


def test_training_survives_corrupt_clips_and_reports_them(damaged_corpus, tmp_path, caplog):
    job = AudioVisualJobArguments(task="pretraining", train_manifest=str(damaged_corpus / "manifest.csv"),
                                  media_root=str(damaged_corpus), config_overrides=json.dumps(TINY),
                                  max_decode_error_fraction=0.5)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                             learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                             seed=0, dataloader_num_workers=0, disable_tqdm=True)
    with caplog.at_level(logging.WARNING, logger="hf_av.data"):
        results = run_training(job, args)
    # Trained to the end on the good clips.
    assert [entry["step"] for entry in results["train_loss_history"]] == [1, 2, 3, 4]
    assert (tmp_path / "model.safetensors").is_file()
    # Reported: every skip names the file and the reason; both damaged files, and only they, were skipped.
    skips = [r.getMessage() for r in caplog.records if "skipping undecodable sample" in r.getMessage()]
    skipped = {name for message in skips for name in ("clip3_cut.mp4", "clip6_garbled.mp4") if name in message}
    assert skipped == {"clip3_cut.mp4", "clip6_garbled.mp4"}
    assert all("clip3_cut.mp4" in m or "clip6_garbled.mp4" in m for m in skips)
    assert all("Error" in m for m in skips)  # the exception type and message are in the report
    # ... and the run's results (and hf_av_results.json) carry the same count and files.
    report = results["decode_errors"]
    assert report["num_failed"] == len(skips)
    assert {Path(sample).name for sample in report["failed_samples"]} == skipped
    assert json.loads((tmp_path / "hf_av_results.json").read_text())["decode_errors"] == report
    print(f"skipped {len(skips)} samples from {len(skipped)} damaged files: {sorted(skipped)}")


def test_the_threshold_still_stops_a_mostly_broken_dataset(damaged_corpus, tmp_path):
    from hf_av.data import TooManyDecodingErrors

    job = AudioVisualJobArguments(task="pretraining", train_manifest=str(damaged_corpus / "manifest.csv"),
                                  media_root=str(damaged_corpus), config_overrides=json.dumps(TINY),
                                  max_decode_error_fraction=0.05)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=4, report_to=[],
                             use_cpu=True, save_strategy="no", dataloader_num_workers=0, disable_tqdm=True)
    with pytest.raises(TooManyDecodingErrors, match="clip3_cut.mp4|clip6_garbled.mp4"):
        run_training(job, args)
