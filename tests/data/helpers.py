"""Small real media files (written by ``tests.media_factory``) and a stand-in processor for the hf_av.data tests."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import torch

from hf_av.errors import MediaDecodingError
from tests.media_factory import write_media

NUM_FRAMES = 4
FPS = 8
SR = 16000
AUDIO_SAMPLES = 4096
SIZE = 32


def write_clip(path, index: int, num_frames: int = NUM_FRAMES, size: int = SIZE, seconds: float = 0.5) -> str:
    """An H.264 + AAC mp4 whose frames have brightness 10 * (index % 24) and whose tone encodes the index."""
    level = 10 * (index % 24) + 5
    frame = np.full((size, size, 3), level, np.uint8)
    n = int(SR * seconds)
    t = np.arange(n) / SR
    pcm = (0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t)).astype(np.float32)
    write_media(path, format="mp4", frames=[frame] * num_frames, fps=FPS,
                video_options={"threads": "1", "preset": "ultrafast"}, audio=pcm[None], sampling_rate=SR, layout="mono")
    return str(path)


def truncate(src, dst, fraction: float = 0.4) -> str:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return str(dst)


def garble(src, dst, seed: int = 0) -> str:
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    data[: min(len(data), 2048)] = rng.integers(0, 256, size=min(len(data), 2048), dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return str(dst)


def decode(source):
    """decode_media from hf_av.media, with the media layer's own error type for unusable clips."""
    from hf_av.media import decode_media

    media = decode_media(source, sampling_rate=SR, audio_channels="mono")
    if media.frames is None or media.frames.shape[0] < NUM_FRAMES:
        raise MediaDecodingError(f"{media.source}: fewer than {NUM_FRAMES} frames")
    if media.audio is None or media.audio.shape[-1] < AUDIO_SAMPLES:
        raise MediaDecodingError(f"{media.source}: audio shorter than {AUDIO_SAMPLES} samples")
    return media


class FakeProcessor:
    """Stands in for a family processor: ``processor(videos=path_or_bytes, return_tensors="pt")`` -> dict of
    tensors with a leading batch dim of 1 (``pixel_values [1, T, 3, 8, 8]``, ``input_values [1, 64, 64]``)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, videos=None, audio=None, return_tensors="pt"):
        self.calls += 1
        media = decode(videos)
        frames = media.frames[:NUM_FRAMES, ::4, ::4]  # [T, 8, 8, 3]
        pixel = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        wav = torch.from_numpy(np.ascontiguousarray(media.audio[0, :AUDIO_SAMPLES])).reshape(64, 64)
        return {"input_values": wav[None], "pixel_values": pixel[None]}


LABELS = ("cat", "dog", "owl")


def make_corpus(root: Path, n: int = 12):
    """n real clips under root/clips and manifests (csv single-label, jsonl multi-label + segments)."""
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = write_clip(clips / f"clip{i:02d}.mp4", i)
        rows.append({"path": os.path.relpath(path, root), "label": LABELS[i % 3]})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label"])
        w.writeheader()
        w.writerows(rows)
    with open(root / "manifest.jsonl", "w") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"path": r["path"], "labels": [LABELS[i % 3], LABELS[(i + 1) % 3]] if i % 2 else [LABELS[0]],
                                "segment_labels": [LABELS[i % 3], "background"]}) + "\n")
    return rows
