"""fbank / feature extractors: hf_av's vs the closest Transformers extractor and a per-clip torch reference.

Rows (clips/s; every ratio is ours / peer timed round-robin in the same process):
  * CAV-MAE: ``kaldi_fbank`` batched vs the per-clip torch Kaldi reference (``benchmarks/kaldi_reference.py``) and
    vs ``ASTFeatureExtractor._extract_fbank_features`` (NumPy); the whole ``CavMaeFeatureExtractor`` call vs the
    whole ``ASTFeatureExtractor`` call (both: fbank + pad/cut to 1024 + normalise), 32 clips x 10 s at 16 kHz.
  * LAVisH: ``LavishFeatureExtractor`` (10 one-second segments per clip, 5.2 ms shift, 192 bins, padded to 192)
    vs ``ASTFeatureExtractor(num_mel_bins=192, max_length=192)`` on the same 1-s segments (AST's fixed 10 ms shift:
    half the frames), and vs the per-segment torch reference with LAVisH's settings; 8 stereo clips x 10 s.
  * DG-SCT: ``DgSctFeatureExtractor`` (10 segments, each tiled to 10 s, HTS-AT log-mel at 32 kHz) vs
    ``ClapFeatureExtractor`` configured to the same STFT/mel (1024/320, 64 mels, 50-14000 Hz) on the same 80
    tiled 10-s signals; 8 clips x 10 s.
Peak RSS: each side runs alone in a fresh worker process (``ru_maxrss``, includes Python + torch + transformers).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import LOAD, print_table, run_worker, time_interleaved, worker_main
from .kaldi_reference import reference_fbank

NUM_CLIPS = 32
SECONDS = 10.0
RATE = 16000
FBANK_OPTIONS = dict(
    sample_frequency=RATE, num_mel_bins=128, frame_length=25.0, frame_shift=10.0, window_type="hanning",
    htk_compat=True, use_energy=False, dither=0.0,
)
NUM_SEGMENT_CLIPS = 8  # LAVisH / DG-SCT rows: 8 clips x 10 segments


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


# ---------------------------------------------------------------------------------------------------------------------
# The calls compared (each returns a zero-argument callable and the number of clips it processes)
# ---------------------------------------------------------------------------------------------------------------------
def _cavmae_calls() -> dict:
    from transformers import ASTFeatureExtractor

    from hf_av import CavMaeFeatureExtractor
    from hf_av.features.kaldi import kaldi_fbank

    clips = make_clips()
    numpy_clips = [c.numpy() for c in clips]
    num_frames = 1 + (clips.shape[1] - 400) // 160
    ast, ours_fe = ASTFeatureExtractor(), CavMaeFeatureExtractor()
    clip_list = list(clips)
    return {
        "cavmae_fbank": lambda: kaldi_fbank(clips, channel=None, **FBANK_OPTIONS),
        "cavmae_reference": lambda: [reference_fbank(c) for c in clips],
        "cavmae_ast_fbank": lambda: [ast._extract_fbank_features(c, max_length=num_frames) for c in numpy_clips],
        "cavmae_fe": lambda: ours_fe(clip_list, sampling_rate=RATE, return_tensors="pt"),
        "cavmae_ast_fe": lambda: ast(numpy_clips, sampling_rate=RATE, return_tensors="np"),
    }


def _lavish_inputs():
    from hf_av import LavishFeatureExtractor

    clips = make_clips(NUM_SEGMENT_CLIPS * 2)
    stereo = [torch.stack([clips[2 * i], clips[2 * i + 1]]) for i in range(NUM_SEGMENT_CLIPS)]
    fe = LavishFeatureExtractor()
    segments = []
    for clip in stereo:
        centred = clip - clip.mean()
        segments += [centred[0, o : o + RATE] for o in fe.segment_offsets(clip.shape[-1])]
    return fe, stereo, segments


def _lavish_calls() -> dict:
    from transformers import ASTFeatureExtractor

    fe, stereo, segments = _lavish_inputs()
    ast = ASTFeatureExtractor(num_mel_bins=192, max_length=192)
    numpy_segments = [s.numpy() for s in segments]
    options = dict(num_mel_bins=192, frame_shift=5.2)
    return {
        "lavish_fe": lambda: fe(stereo, sampling_rate=RATE, return_tensors="pt"),
        "lavish_ast_fe": lambda: ast(numpy_segments, sampling_rate=RATE, return_tensors="np"),
        "lavish_reference": lambda: [(reference_fbank(s, **options) - fe.mean) / (2 * fe.std) for s in segments],
    }


def _dgsct_calls() -> dict:
    from transformers import ClapFeatureExtractor

    from hf_av import DgSctFeatureExtractor

    fe = DgSctFeatureExtractor()
    clips = [c for c in make_clips(NUM_SEGMENT_CLIPS, rate=32000)]
    tiled = [t.numpy() for clip in clips for t in fe.tile_segments(clip)]  # the same 80 ten-second signals
    clap = ClapFeatureExtractor(sampling_rate=32000, hop_length=320, fft_window_size=1024, frequency_min=50,
                                frequency_max=14000, max_length_s=10, truncation="rand_trunc", padding="repeatpad")
    return {
        "dgsct_fe": lambda: fe(clips, sampling_rate=32000, return_tensors="pt"),
        "dgsct_clap_fe": lambda: clap(tiled, sampling_rate=32000, return_tensors="np"),
    }


FAMILIES = {"cavmae": _cavmae_calls, "lavish": _lavish_calls, "dgsct": _dgsct_calls}


def handle(args: dict) -> dict:
    """Worker: run one call alone (for its peak RSS)."""
    call = FAMILIES[args["family"]]()[args["call"]]
    for _ in range(2):
        call()
    return {}


# ---------------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------------
def _rss(family: str, call: str) -> float | None:
    result = run_worker("bench_fbank", {"family": family, "call": call}, timeout=1200)
    return result.get("peak_rss_mb")


def _outputs_agree() -> dict:
    from transformers import ASTFeatureExtractor

    from hf_av.features.kaldi import kaldi_fbank

    clips = make_clips(8)
    ours = kaldi_fbank(clips, channel=None, **FBANK_OPTIONS)
    reference = torch.stack([reference_fbank(c) for c in clips])
    ast = ASTFeatureExtractor()
    num_frames = ours.shape[1]
    ast_out = torch.from_numpy(np.stack([ast._extract_fbank_features(c.numpy(), max_length=num_frames) for c in clips]))
    fe, stereo, segments = _lavish_inputs()
    lavish = fe(stereo[:2], sampling_rate=RATE, return_tensors="pt")["input_values"].reshape(-1, 192, 192)
    lavish_ref = torch.stack([(reference_fbank(s, num_mel_bins=192, frame_shift=5.2) - fe.mean) / (2 * fe.std)
                              for s in segments[:20]])
    return {
        "cavmae_vs_reference": (ours - reference).abs().max().item(),
        "cavmae_vs_ast_numpy": (ours - ast_out.to(ours.dtype)).abs().max().item(),
        "lavish_vs_reference": (lavish[:, :188] - lavish_ref).abs().max().item(),
    }


def run(quick: bool = False, **unused) -> dict:
    repeats = 3 if quick else 7
    agree = _outputs_agree()
    timings, load = {}, {}
    for family, make in FAMILIES.items():
        calls = make()
        # the NumPy peers are 10-30x slower: fewer of their repeats still take most of the time
        load[family] = [LOAD.note(f"fbank {family} start")]
        timings.update(time_interleaved(calls, repeats))
        load[family].append(LOAD.note(f"fbank {family} end"))
    rss = {}
    for family, make in FAMILIES.items():
        for call in make():
            rss[call] = _rss(family, call)

    def rate(call: str, clips: int) -> float:
        return clips / timings[call].median

    def ratio(ours: str, peer: str) -> float:
        return timings[peer].median / timings[ours].median

    def load_text(family: str) -> str:
        return "-".join(f"{v:.1f}" for v in load[family])

    n, s = NUM_CLIPS, NUM_SEGMENT_CLIPS
    rows = [
        ["CAV-MAE `kaldi_fbank` batched [32,160000]", rate("cavmae_fbank", n), rss["cavmae_fbank"],
         "per-clip torch Kaldi reference", rate("cavmae_reference", n), rss["cavmae_reference"],
         ratio("cavmae_fbank", "cavmae_reference"), ">=1 (batched never slower)", load_text("cavmae"),
         f"max|diff| {agree['cavmae_vs_reference']:.1e}"],
        ["CAV-MAE `kaldi_fbank` batched", rate("cavmae_fbank", n), rss["cavmae_fbank"],
         "AST `_extract_fbank_features` (NumPy), per clip", rate("cavmae_ast_fbank", n), rss["cavmae_ast_fbank"],
         ratio("cavmae_fbank", "cavmae_ast_fbank"), ">=10", load_text("cavmae"),
         f"max|diff| vs NumPy {agree['cavmae_vs_ast_numpy']:.1e}"],
        ["`CavMaeFeatureExtractor()(32 clips)`", rate("cavmae_fe", n), rss["cavmae_fe"],
         "`ASTFeatureExtractor()(32 clips)`", rate("cavmae_ast_fe", n), rss["cavmae_ast_fe"],
         ratio("cavmae_fe", "cavmae_ast_fe"), ">=10", load_text("cavmae"), "fbank + pad/cut 1024 + normalise"],
        ["`LavishFeatureExtractor()(8 clips)` (80 segments)", rate("lavish_fe", s), rss["lavish_fe"],
         "`ASTFeatureExtractor(192 bins, 192 frames)` on the 80 segments", rate("lavish_ast_fe", s),
         rss["lavish_ast_fe"], ratio("lavish_fe", "lavish_ast_fe"), ">=10", load_text("lavish"),
         "AST uses a 10 ms shift: half our frames"],
        ["`LavishFeatureExtractor()(8 clips)`", rate("lavish_fe", s), rss["lavish_fe"],
         "per-segment torch Kaldi reference (+ normalise)", rate("lavish_reference", s), rss["lavish_reference"],
         ratio("lavish_fe", "lavish_reference"), ">=1", load_text("lavish"),
         f"max|diff| {agree['lavish_vs_reference']:.1e}"],
        ["`DgSctFeatureExtractor()(8 clips)` (80 x 10 s)", rate("dgsct_fe", s), rss["dgsct_fe"],
         "`ClapFeatureExtractor` (same STFT/mel) on the 80 tiled signals", rate("dgsct_clap_fe", s),
         rss["dgsct_clap_fe"], ratio("dgsct_fe", "dgsct_clap_fe"), ">=10", load_text("dgsct"), "-"],
    ]
    for row in rows:
        row[7] = f"{row[7]}: " + ("yes" if row[6] >= float(row[7].split(" ")[0].lstrip(">=")) else "NO")
    table = print_table(
        "feature extractors (clips/s, median of round-robin repeats; ratio = ours / peer, same process)",
        ["ours", "clips/s", "peak RSS MB", "peer", "clips/s", "peak RSS MB", "ratio", "target", "load", "note"],
        rows,
    )
    return {"table": table, "timings": {k: v.as_dict() for k, v in timings.items()}, "agreement": agree,
            "peak_rss_mb": rss, "load": load}


if __name__ == "__main__":
    worker_main(handle)
