"""A small H.264 + AAC file written with PyAV (via ``tests.media_factory``) at test time."""

import numpy as np

from tests.media_factory import write_media


def write_test_video(path, seconds=2.0, fps=25, sampling_rate=48000, channels=2, width=96, height=64):
    """Frame ``i`` is a flat grey of level ``(5 * i) % 255``; channel ``c`` is a 440 * (c + 1) Hz sine."""
    frames = (np.full((height, width, 3), (i * 5) % 255, np.uint8) for i in range(int(seconds * fps)))
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    samples = np.stack([0.3 * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)]).astype(np.float32)
    write_media(path, frames=frames, fps=fps, audio=samples, sampling_rate=sampling_rate,
                layout="stereo" if channels == 2 else "mono")
    return path
