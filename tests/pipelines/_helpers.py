"""Test helpers shared by the pipeline, hub, CLI and visualization tests: real media files written with PyAV (via
``tests.media_factory``) and tiny random-weight CAV-MAE folders written with `save_pretrained`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.media_factory import write_media

TINY_LABELS = ["speech", "dog", "music", "engine", "bird"]


def write_clip(
    path: str | Path,
    seconds: float = 2.0,
    fps: int = 10,
    size: int = 64,
    sampling_rate: int = 16000,
    frequency: float = 440.0,
    with_audio: bool = True,
    with_video: bool = True,
    seed: int = 0,
) -> Path:
    """An mp4 (H.264 + AAC) clip: a bright square moving over a dark textured background, and a tone whose
    loudness follows the square's horizontal position. Audio-only clips are written as WAV (PCM)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    num_frames = int(round(seconds * fps))
    num_samples = int(round(seconds * sampling_rate))
    t = np.arange(num_samples) / sampling_rate
    envelope = 0.3 + 0.2 * np.sin(2 * np.pi * 0.5 * t)
    tone = (envelope * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(num_samples)).astype(np.float32)

    if not with_video:
        pcm = (np.clip(tone, -1, 1) * 32767).astype(np.int16)[None]
        return write_media(path, format="wav", audio=pcm, sampling_rate=sampling_rate, audio_codec="pcm_s16le")

    background = (rng.integers(0, 40, size=(size, size, 3))).astype(np.uint8)
    square = size // 4

    def frames():
        for index in range(num_frames):
            image = background.copy()
            x = int((size - square) * (0.5 + 0.45 * np.sin(2 * np.pi * index / max(num_frames, 1))))
            y = size // 2 - square // 2
            image[y : y + square, x : x + square] = (230, 200, 40)
            yield image

    return write_media(path, format="mp4", frames=frames(), fps=fps, video_options={"preset": "ultrafast", "crf": "18"},
                       audio=tone[None] if with_audio else None, sampling_rate=sampling_rate)


def tiny_cav_mae_config(**overrides):
    from hf_av import CavMaeConfig

    kwargs = dict(
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_modality_specific_layers=1,
        num_shared_layers=1, audio_length=64, num_mel_bins=128, image_size=64, patch_size=16,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, num_labels=len(TINY_LABELS),
        id2label=dict(enumerate(TINY_LABELS)), label2id={name: i for i, name in enumerate(TINY_LABELS)},
    )
    kwargs.update(overrides)
    return CavMaeConfig(**kwargs)


def save_tiny_cav_mae(path: str | Path, model_class: str = "CavMaeForAudioVisualClassification", seed: int = 0, **overrides) -> Path:
    """Save a random-weight tiny CAV-MAE model and a processor sized for it."""
    import torch

    import hf_av
    from hf_av import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor

    config = tiny_cav_mae_config(**overrides)
    torch.manual_seed(seed)
    model = getattr(hf_av, model_class)(config).eval()
    path = Path(path)
    model.save_pretrained(path)
    size = config.image_size
    CavMaeProcessor(
        feature_extractor=CavMaeFeatureExtractor(num_mel_bins=config.num_mel_bins, target_length=config.audio_length),
        image_processor=CavMaeImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
    ).save_pretrained(path)
    return path
