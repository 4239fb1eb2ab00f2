import pytest

from ._helpers import save_tiny_cav_mae, write_clip


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Real media files written with PyAV: two audio-visual clips, a WAV, a silent video and a corrupt file."""
    root = tmp_path_factory.mktemp("media")
    files = {
        "clip": write_clip(root / "clip.mp4", seconds=2.0),
        "other": write_clip(root / "other.mp4", seconds=2.0, frequency=1500.0, seed=3),
        "wav": write_clip(root / "tone.wav", seconds=1.0, with_video=False),
        "silent": write_clip(root / "silent.mp4", seconds=1.0, with_audio=False),
    }
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    files["corrupt"] = corrupt
    return files


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    return save_tiny_cav_mae(tmp_path_factory.mktemp("models") / "cav-mae-cls")


@pytest.fixture(scope="session")
def pretraining_dir(tmp_path_factory):
    return save_tiny_cav_mae(tmp_path_factory.mktemp("models") / "cav-mae-pre", "CavMaeForPreTraining", seed=1)
