"""fbank: hf_av's batched Kaldi fbank vs Transformers' ASTFeatureExtractor (NumPy path) and the per-clip torch
reference of the Kaldi algorithm, on 32 clips of 10 s at 16 kHz."""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import LOAD, print_table, time_calls
from .kaldi_reference import reference_fbank

NUM_CLIPS = 32
SECONDS = 10.0
RATE = 16000
FBANK_OPTIONS = dict(
    sample_frequency=RATE, num_mel_bins=128, frame_length=25.0, frame_shift=10.0, window_type="hanning",
    htk_compat=True, use_energy=False, dither=0.0,
)


def make_clips(num_clips: int = NUM_CLIPS, seconds: float = SECONDS, rate: int = RATE) -> torch.Tensor:
    """Deterministic speech-like clips in [-1, 1]: a few drifting tones, amplitude modulation and noise."""
    generator = torch.Generator().manual_seed(1234)
    n = int(seconds * rate)
    t = torch.arange(n, dtype=torch.float64) / rate
    clips = []
    for i in range(num_clips):
        f0 = 110.0 + 30.0 * i
        tone = sum(torch.sin(2 * math.pi * (f0 * h) * t + 0.3 * h * torch.sin(2 * math.pi * 0.5 * t)) / h for h in (1, 2, 3, 5))
        envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * (0.7 + 0.05 * i) * t).abs()
        noise = 0.05 * torch.randn(n, generator=generator, dtype=torch.float64)
        clip = 0.25 * tone * envelope + noise
        clips.append((clip / clip.abs().max() * 0.9).to(torch.float32))
    return torch.stack(clips)


def run(quick: bool = False) -> dict:
    from transformers import ASTFeatureExtractor

    from hf_av import CavMaeFeatureExtractor
    from hf_av.features.kaldi import kaldi_fbank

    repeats = 3 if quick else 7
    clips = make_clips()
    numpy_clips = [c.numpy() for c in clips]
    num_frames = 1 + (clips.shape[1] - 400) // 160
    ast = ASTFeatureExtractor()
    ours_fe = CavMaeFeatureExtractor()

    # outputs first: ours must equal the reference algorithm within 1e-4
    ours_out = kaldi_fbank(clips, channel=None, **FBANK_OPTIONS)
    ref_out = torch.stack([reference_fbank(c) for c in clips])
    ast_out = torch.from_numpy(np.stack([ast._extract_fbank_features(c, max_length=num_frames) for c in numpy_clips]))
    diff_ref = (ours_out - ref_out).abs().max().item()
    diff_ast = (ours_out - ast_out.to(ours_out.dtype)).abs().max().item()

    LOAD.note("fbank start")
    t_ours = time_calls(lambda: kaldi_fbank(clips, channel=None, **FBANK_OPTIONS), repeats)
    t_ref = time_calls(lambda: [reference_fbank(c) for c in clips], repeats)
    t_ast = time_calls(lambda: [ast._extract_fbank_features(c, max_length=num_frames) for c in numpy_clips], repeats)
    t_ours_full = time_calls(lambda: ours_fe(list(clips), sampling_rate=RATE, return_tensors="pt"), repeats)
    t_ast_full = time_calls(lambda: ast(numpy_clips, sampling_rate=RATE, return_tensors="np"), repeats)
    LOAD.note("fbank end")

    def per_s(timing) -> float:
        return NUM_CLIPS / timing.median

    rows = [
        ["raw log-mel: ours `kaldi_fbank` batched [32,160000]", per_s(t_ours),
         "per-clip torch Kaldi reference (benchmarks/kaldi_reference.py)", per_s(t_ref),
         t_ref.median / t_ours.median, "-", f"max|diff| {diff_ref:.2e} (<=1e-4: {'yes' if diff_ref <= 1e-4 else 'NO'})"],
        ["raw log-mel: ours `kaldi_fbank` batched", per_s(t_ours),
         "ASTFeatureExtractor._extract_fbank_features (NumPy), per clip", per_s(t_ast),
         t_ast.median / t_ours.median, ">=10x: " + ("yes" if t_ast.median / t_ours.median >= 10 else "NO"),
         f"max|diff| vs NumPy {diff_ast:.2e}"],
        ["full call: ours `CavMaeFeatureExtractor()(32 clips)`", per_s(t_ours_full),
         "`ASTFeatureExtractor()(32 clips)` (pad 1024 + normalise)", per_s(t_ast_full),
         t_ast_full.median / t_ours_full.median, ">=10x: " + ("yes" if t_ast_full.median / t_ours_full.median >= 10 else "NO"),
         "both: fbank + pad/cut to 1024 + normalise"],
    ]
    table = print_table(
        "fbank, 32 clips x 10 s @ 16 kHz (clips/s, median; ratio = ours / peer throughput)",
        ["ours", "clips/s", "peer (same run)", "clips/s", "ratio", "target", "note"],
        rows,
    )
    return {
        "table": table,
        "ours_batched": t_ours.as_dict(),
        "reference_per_clip": t_ref.as_dict(),
        "ast_numpy_per_clip": t_ast.as_dict(),
        "ours_feature_extractor": t_ours_full.as_dict(),
        "ast_full_call": t_ast_full.as_dict(),
        "max_abs_diff_vs_reference": diff_ref,
        "max_abs_diff_vs_ast_numpy": diff_ast,
    }
