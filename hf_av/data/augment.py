"""Training-time augmentation of preprocessed examples (applied per example by the collator).

The CAV-MAE training scripts augment every training example (pre-training and fine-tuning alike): one of the ten
extracted frames is drawn at random (evaluation uses the middle one), and the normalised fbank gets uniform noise
of a random strength, ``fbank + rand(T, F) * U(0, 1) / 10``, then a circular shift along time by
``randint(-T, T)`` frames. ``AudioVisualAugmentation`` does the same on the processor's outputs (one example, or a
collated batch). The training entry point applies it to each batch inside the training step, not in the
collator: the draws then come from torch's global generator in step order, which Trainer saves in its
checkpoints, so a resumed run draws the same augmentations as an uninterrupted one (a collator runs a batch
ahead of the step, and skipped batches are never collated on resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from .noise import BackgroundNoiseMixing

__all__ = ["AudioVisualAugmentation"]


@dataclass
class AudioVisualAugmentation:
    """Per-example augmentation of ``input_values [T, F]`` and ``pixel_values``.

    * ``random_frame``: an example whose ``pixel_values`` hold several frames ``[N, 3, H, W]`` (decoded with
      ``frame_index="all"``) keeps one of them at random, ``[3, H, W]``; single frames pass unchanged.
    * ``fbank_noise``: maximum noise strength; the example's strength is drawn from ``U(0, fbank_noise)`` and
      ``uniform[0, 1) * strength`` is added to every fbank value (0 turns it off; the original uses 0.1).
    * ``time_roll``: shift the fbank circularly along time by a random number of frames in ``[-T, T)``.
    * ``background_noise``: a :class:`~hf_av.data.noise.BackgroundNoiseMixing` applied to the fbank first (not
      in the original recipe; ``None`` turns it off).
    """

    random_frame: bool = True
    fbank_noise: float = 0.1
    time_roll: bool = True
    background_noise: Optional[BackgroundNoiseMixing] = None

    def __post_init__(self):
        if self.fbank_noise < 0:
            raise ValueError(f"fbank_noise must be >= 0, got {self.fbank_noise}")

    def __call__(self, example: Mapping) -> Dict:
        import torch

        out = dict(example)
        pixels = out.get("pixel_values")
        if self.random_frame and isinstance(pixels, torch.Tensor) and pixels.dim() == 4:
            out["pixel_values"] = pixels[int(torch.randint(pixels.shape[0], ()))]
        audio = out.get("input_values")
        if isinstance(audio, torch.Tensor) and audio.dim() == 2:
            if self.background_noise is not None:
                audio = self.background_noise(audio)
            if self.fbank_noise > 0:
                strength = float(torch.rand(())) * self.fbank_noise
                audio = audio + torch.rand_like(audio) * strength
            if self.time_roll:
                frames = audio.shape[0]
                audio = torch.roll(audio, int(torch.randint(-frames, frames, ())), dims=0)
            out["input_values"] = audio
        return out

    def augment_batch(self, batch: Mapping) -> Dict:
        """The same draws per example of a collated batch: ``input_values [B, T, F]``,
        ``pixel_values [B, N, 3, H, W]`` (several frames) or ``[B, 3, H, W]``; other keys pass through."""
        import torch

        out = dict(batch)
        keys = [k for k in ("input_values", "pixel_values") if isinstance(batch.get(k), torch.Tensor)]
        if not keys:
            return out
        size = batch[keys[0]].shape[0]
        examples = [self({k: batch[k][i] for k in keys}) for i in range(size)]
        for key in keys:
            out[key] = torch.stack([example[key] for example in examples])
        return out
