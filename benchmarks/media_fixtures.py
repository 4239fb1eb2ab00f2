"""Benchmark media written with PyAV: 5 s 1280x720 H.264 at 25 fps + 5.1 AAC at 48 kHz (like the anchor clip).

Content is made here; the muxing is ``tests.media_factory.write_media`` (the test suites' writer). Files are cached
under ``$HF_AV_BENCH_MEDIA`` (default ``/tmp/hf_av_bench_media``) and re-used between runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from tests.media_factory import write_media  # the repository root is on sys.path (see run.py)

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 25, 5.0
AUDIO_RATE = 48000


def media_dir() -> Path:
    path = Path(os.environ.get("HF_AV_BENCH_MEDIA", "/tmp/hf_av_bench_media"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _frame(index: int, seed: int) -> np.ndarray:
    """A moving colour field with a travelling square and fine texture (not trivially compressible)."""
    y = np.arange(HEIGHT, dtype=np.float32)[:, None]
    x = np.arange(WIDTH, dtype=np.float32)[None, :]
    t = index / FPS
    r = 127 + 120 * np.sin(2 * math.pi * (x / 320 + t * 0.4 + seed * 0.1))
    g = 127 + 120 * np.sin(2 * math.pi * (y / 180 - t * 0.3 + seed * 0.2)) * np.cos(2 * math.pi * x / 640)
    b = 127 + 120 * np.sin(2 * math.pi * ((x + y) / 400 + t * 0.7))
    r, g, b = np.broadcast_arrays(r, g, b)
    image = np.stack([r, g, b], axis=-1)
    rng = np.random.default_rng(seed * 1000 + index)
    image += rng.normal(0, 2, size=(HEIGHT, WIDTH, 1)).astype(np.float32)
    cx = int((WIDTH - 200) * (0.5 + 0.5 * math.sin(t + seed)))
    cy = int((HEIGHT - 200) * (0.5 + 0.5 * math.cos(1.3 * t + seed)))
    image[cy : cy + 200, cx : cx + 200] = (255, 255 - 40 * seed % 255, 40)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_clip(path: Path, seed: int) -> None:
    total = int(SECONDS * AUDIO_RATE)
    t_all = np.arange(total, dtype=np.float64) / AUDIO_RATE
    channels = np.stack(
        [0.2 * np.sin(2 * math.pi * (220 + 55 * c + 20 * seed) * t_all) * (0.6 + 0.4 * np.sin(2 * math.pi * 0.5 * t_all))
         for c in range(6)]
    ).astype(np.float32)
    tmp = path.with_suffix(".tmp.mp4")
    frames = (_frame(i, seed) for i in range(int(SECONDS * FPS)))
    write_media(tmp, frames=frames, fps=FPS, video_options={"preset": "veryfast", "crf": "23"},
                audio=channels, sampling_rate=AUDIO_RATE, layout="5.1")
    tmp.rename(path)


def benchmark_clips(count: int) -> list[str]:
    """Paths of ``count`` distinct clips (written once, then cached)."""
    paths = []
    for seed in range(count):
        path = media_dir() / f"clip720p_51aac_{seed}.mp4"
        if not path.exists():
            write_clip(path, seed)
        paths.append(str(path))
    return paths
