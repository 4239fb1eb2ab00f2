"""Full-size LAVisH / DG-SCT AVE forward (one 10-segment clip, fp32, inference) against the in-run matmul rate.

The originals' figures (`research/perf-anchors.md`, Intel AMX machine): LAVisH 5.55 s per clip at ~51 % of the fp32
matmul rate, DG-SCT 5.68 s at ~50 % and 3.0 GB peak. Absolute seconds differ between CPUs, so the comparison is the
utilisation: the model's GFLOP/s (FLOPs counted by `FlopCounterMode`) over the fp32 matmul rate measured in the
same process just before and just after the timed calls. Weights are random (same FLOPs as the released models).

    python -m benchmarks.bench_families [--families lavish,dg-sct] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from .common import loadavg, matmul_peak, peak_rss_mb, run_worker, setup_torch, time_calls, worker_main

ORIGINAL = {"lavish": {"seconds": 5.55, "utilisation": 0.51}, "dg-sct": {"seconds": 5.68, "utilisation": 0.50}}


def _model_and_inputs(family: str):
    import hf_av

    row = hf_av.get_family(family)
    config = row.config_class()()
    model = row.head_for_task("event-localization")(config).eval()
    segments = config.num_segments
    if family == "lavish":
        size = config.backbone_config.image_size
        inputs = {
            "input_values": torch.randn(1, segments, size, size),
            "pixel_values": torch.randn(1, segments, 3, size, size),
        }
    else:
        size = config.vision_config.image_size
        audio = config.audio_config
        inputs = {
            # each 1-s segment tiled to 10 s at 32 kHz, as DgSctFeatureExtractor produces
            "input_values": torch.randn(1, segments, 32000 * 10 // audio.hop_length + 1, audio.num_mel_bins),
            "pixel_values": torch.randn(1, segments, 3, size, size),
        }
    return model, inputs


def handle(args: dict) -> dict:
    setup_torch()
    family = args["family"]
    model, inputs = _model_and_inputs(family)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(**inputs)
        flops = counter.get_total_flops()
        rate_before, _ = matmul_peak(torch.float32, repeats=3)
        timing = time_calls(lambda: model(**inputs), repeats=args["repeats"], warmup=1)
        rate_after, _ = matmul_peak(torch.float32, repeats=3)
    rate = (rate_before + rate_after) / 2
    achieved = flops / timing.median / 1e9
    return {
        "family": family,
        "gflop_per_clip": flops / 1e9,
        "seconds_per_clip": timing.median,
        "achieved_gflops": achieved,
        "matmul_gflops": rate,
        "utilisation": achieved / rate,
        "peak_rss_mb": peak_rss_mb(),
        "load": loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="lavish,dg-sct")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker_main(handle)
        return
    for family in args.families.split(","):
        result = run_worker("bench_families", {"family": family, "repeats": args.repeats}, timeout=1800)
        original = ORIGINAL[family]
        result["utilisation_ratio_vs_original"] = result["utilisation"] / original["utilisation"]
        print(json.dumps(result))


if __name__ == "__main__":
    main()
