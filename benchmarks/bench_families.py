"""Full-size LAVisH / DG-SCT / VATT-BBS rows: fp32 forward against the in-run matmul rate, bf16 against fp32 in the
same process, and the LAVisH / DG-SCT training step's memory with the backbone frozen vs everything trainable.

The originals' figures (`research/perf-anchors.md`, Intel AMX machine): LAVisH 5.55 s per 10-segment clip at ~51 % of
the fp32 matmul rate, DG-SCT 5.68 s at ~50 % and 3.0 GB peak, TF2 VATT-BBS 2.59 s per clip at 64 % and 1.9 GB.
Absolute seconds differ between CPUs, so the comparison is the utilisation: the model's GFLOP/s (FLOPs counted by
`FlopCounterMode`) over the fp32 matmul rate measured in the same process just before and just after the timed calls.
Weights are random (same FLOPs as the released models). Every configuration runs in its own process (peak RSS is
that process's `VmHWM`).

Parts (``--parts``):
    forward  fp32 forward of one clip (LAVisH / DG-SCT: 10 one-second segments; VATT: 32 x 224 x 224 frames, 3.2 s of
             48 kHz audio and 16 words, the original's eval input), FLOPs, seconds, utilisation, peak RSS.
    bf16     fp32 and bf16 weights (what `from_pretrained(..., dtype=torch.bfloat16)` gives) timed interleaved in one
             process, with the ViT-B MLP `F.linear` rate of each dtype measured between the calls; utilisation of
             each against its own dtype's linear rate; outputs compared with fp32 (max |diff| / max |value|).
    train    LAVisH / DG-SCT: one process per policy builds the full-size AVE model the documented way
             (`from_pretrained_backbone(s)` of saved random Swin-V2-L / HTS-AT folders: backbone frozen, only the
             adapters / DG-SCT modules and the head train) or the same model with every parameter trainable, then runs
             training steps (forward with labels + backward + AdamW step) and reports the peak RSS of the steps
             (`VmHWM` reset after the model is built, so the backbone copy `from_pretrained` reads is not counted; the
             whole-process peak is reported too).

    python -m benchmarks.bench_families [--families lavish,dg-sct,vatt] [--parts forward,bf16,train] [--repeats 2]
    python benchmarks/run.py --only families [--families ...] [--family-parts ...] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from .common import (
    LOAD,
    cpu_has_native_bf16,
    loadavg,
    matmul_gflops,
    matmul_peak,
    peak_rss_mb,
    print_table,
    run_worker,
    setup_torch,
    time_calls,
    worker_main,
)

FAMILIES = ("lavish", "dg-sct", "vatt")
PARTS = ("forward", "bf16", "train")
TRAINABLE_FAMILIES = ("lavish", "dg-sct")  # the frozen-backbone training policy is theirs (VATT trains everything)
ORIGINAL = {
    "lavish": {"seconds": 5.55, "utilisation": 0.51, "peak_rss_mb": 1927},
    "dg-sct": {"seconds": 5.68, "utilisation": 0.50, "peak_rss_mb": 3009},
    "vatt": {"seconds": 2.59, "utilisation": 0.64, "peak_rss_mb": 1949},
}
LABEL = {
    "lavish": "LAVisH AVE (Swin-V2-L 192, adapters, AVE head)",
    "dg-sct": "DG-SCT AVE (Swin-V2-L 192 + HTS-AT, DG-SCT modules, CMBS head)",
    "vatt": "VATT-BBS (ViT-B video, WaT-B audio, T5-S text, FAC heads)",
}
LINEAR_SHAPE = "linear ViT-B MLP [2832,768]->3072"


# ---------------------------------------------------------------------------------------------------------------------
# Models and inputs
# ---------------------------------------------------------------------------------------------------------------------
def _inputs(family: str, config, generator: torch.Generator) -> dict:
    if family == "vatt":
        return {
            "pixel_values": torch.rand(1, config.video_num_frames, 3, config.video_image_size, config.video_image_size,
                                       generator=generator) * 2 - 1,
            "input_values": torch.randn(1, config.audio_num_samples, generator=generator) * 0.1,
            "input_ids": torch.randint(1, config.text_vocab_size, (1, config.text_max_length), generator=generator),
        }
    segments = config.num_segments
    if family == "lavish":
        size = config.backbone_config.image_size
        return {
            "input_values": torch.randn(1, segments, size, size, generator=generator),
            "pixel_values": torch.randn(1, segments, 3, size, size, generator=generator),
        }
    size = config.vision_config.image_size
    audio = config.audio_config
    return {
        # each 1-s segment tiled to 10 s at 32 kHz, as DgSctFeatureExtractor produces (log-mel dB values)
        "input_values": torch.randn(1, segments, 32000 * 10 // audio.hop_length + 1, audio.num_mel_bins,
                                    generator=generator) * 10 - 40,
        "pixel_values": torch.randn(1, segments, 3, size, size, generator=generator),
    }


def _model_and_inputs(family: str):
    """The full-size inference model (random weights) and one clip of its eval input."""
    import hf_av

    if family == "vatt":
        config = hf_av.VattConfig.from_preset("bbs")  # the released VATT-BBS pre-training model
        model = hf_av.VattModel(config).eval()
    else:
        row = hf_av.get_family(family)
        config = row.config_class()()
        model = row.head_for_task("event-localization")(config).eval()
    return model, _inputs(family, config, torch.Generator().manual_seed(0))


def model_outputs(family: str, output) -> dict[str, torch.Tensor]:
    """The tensors compared between precisions (fp32 copies): class logits, or VATT's four joint-space embeddings."""
    if family == "vatt":
        names = ("video_audio_embeds", "video_text_embeds", "audio_embeds", "text_embeds")
    elif family == "dg-sct":
        names = ("logits", "is_event_logits")
    else:
        names = ("logits",)
    return {name: getattr(output, name).float() for name in names}


def relative_gap(values: torch.Tensor, reference: torch.Tensor) -> float:
    """max |values - reference| / max |reference|."""
    return ((values.float() - reference).abs().max() / reference.abs().max()).item()


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset this process's `VmHWM` to its current RSS (Linux `clear_refs` 5); False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------------------------------
def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Q K^T and P V of `F.scaled_dot_product_attention`'s CPU kernel, which `FlopCounterMode` leaves uncounted
    (it knows the CUDA kernels only): without this VATT's attention (144 of its 623 GFLOP) would be missing."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def flop_counter_mode() -> FlopCounterMode:
    """`FlopCounterMode` that also counts the CPU SDPA kernel (matmul / conv / attention as 2 FLOPs per MAC)."""
    return FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    })


def _forward(family: str, repeats: int) -> dict:
    model, inputs = _model_and_inputs(family)
    with torch.inference_mode():
        with flop_counter_mode() as counter:
            model(**inputs)
        flops = counter.get_total_flops()
        rate_before, _ = matmul_peak(torch.float32, repeats=3)
        timing = time_calls(lambda: model(**inputs), repeats=repeats, warmup=1)
        rate_after, _ = matmul_peak(torch.float32, repeats=3)
    rate = (rate_before + rate_after) / 2
    achieved = flops / timing.median / 1e9
    return {
        "gflop_per_clip": flops / 1e9,
        "seconds_per_clip": timing.median,
        "samples_s": timing.samples,
        "achieved_gflops": achieved,
        "matmul_gflops": rate,
        "utilisation": achieved / rate,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _linear_rate(dtype: torch.dtype) -> float:
    table = matmul_gflops(dtype, repeats=3, shapes={LINEAR_SHAPE: ("linear", 2832, 768, 3072)})
    return table[LINEAR_SHAPE]["gflops_median"]


def _bf16(family: str, repeats: int) -> dict:
    """fp32 and bf16 copies of one model, calls interleaved (fp32, bf16, fp32, bf16, ...) with the linear rates of both
    dtypes measured before each round, so a load change hits both alike."""
    model, inputs = _model_and_inputs(family)
    with torch.inference_mode(), flop_counter_mode() as counter:
        reference = model_outputs(family, model(**inputs))
    flops = counter.get_total_flops()
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)  # = from_pretrained(..., dtype=torch.bfloat16)
    calls = {"fp32": lambda: model(**inputs), "bf16": lambda: bf16_model(**inputs)}
    samples = {name: [] for name in calls}
    rates = {"fp32": [], "bf16": []}
    with torch.inference_mode():
        bf16_outputs = model_outputs(family, calls["bf16"]())  # warm-up of both, outside the timed rounds
        calls["fp32"]()
        for _ in range(repeats):
            rates["fp32"].append(_linear_rate(torch.float32))
            rates["bf16"].append(_linear_rate(torch.bfloat16))
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
    rows = {}
    for name, values in samples.items():
        seconds = statistics.median(values)
        linear = statistics.median(rates[name])
        rows[name] = {"samples_s": values, "seconds_per_clip": seconds, "achieved_gflops": flops / seconds / 1e9,
                      "linear_gflops": linear, "utilisation": flops / seconds / 1e9 / linear}
    rows["bf16"]["x_fp32"] = rows["fp32"]["seconds_per_clip"] / rows["bf16"]["seconds_per_clip"]
    # each output against its own fp32 max |value|
    rows["bf16"]["output_gaps"] = {name: relative_gap(bf16_outputs[name], reference[name]) for name in reference}
    return {"gflop_per_clip": flops / 1e9, "rows": rows, "native_bf16": cpu_has_native_bf16(),
            "weights_mb": {"fp32": _parameter_mb(model), "bf16": _parameter_mb(bf16_model)}}


def _parameter_mb(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())) / 2**20


def _save_backbones(folder: str) -> dict:
    """Random full-size backbones saved as Hub-style folders, for the documented `from_pretrained_backbone(s)`."""
    from transformers import ClapAudioModel, Swinv2Model

    from hf_av import DgSctConfig, LavishConfig

    lavish, dg_sct = LavishConfig(), DgSctConfig()
    if lavish.backbone_config.to_diff_dict() != dg_sct.vision_config.to_diff_dict():
        raise RuntimeError("LAVisH and DG-SCT default Swin-V2 configs differ: save one backbone per family")
    Swinv2Model(lavish.backbone_config).save_pretrained(Path(folder) / "swinv2")
    ClapAudioModel(dg_sct.audio_config).save_pretrained(Path(folder) / "htsat")
    return {"folder": folder}


def build_for_training(family: str, folder: str | Path, policy: str):
    """The full-size AVE model the documented way; `policy="all"` then makes every parameter trainable."""
    from hf_av import DgSctForAudioVisualEventLocalization, LavishForAudioVisualEventLocalization
    from modeling.common.trainable import trainable_report

    if policy not in ("frozen-backbone", "all"):
        raise ValueError(f"policy must be 'frozen-backbone' or 'all', got {policy!r}")
    folder = Path(folder)
    if family == "lavish":
        model = LavishForAudioVisualEventLocalization.from_pretrained_backbone(str(folder / "swinv2"))
    else:
        model = DgSctForAudioVisualEventLocalization.from_pretrained_backbones(
            str(folder / "swinv2"), str(folder / "htsat")
        )
    if policy == "all":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    return model, trainable_report(model)


def _train(family: str, folder: str, policy: str, steps: int) -> dict:
    model, report = build_for_training(family, folder, policy)
    config = model.config
    inputs = _inputs(family, config, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    # per-segment labels: one event class in the first segments, background after (as AVE clips are)
    labels = torch.full((1, config.num_segments), config.num_labels - 1, dtype=torch.long)
    labels[0, : config.num_segments // 2] = int(torch.randint(0, config.num_labels - 1, (1,), generator=generator))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gc.collect()
    build_peak = _rss_mb("VmHWM")
    resident = _rss_mb()
    reset = reset_peak_rss()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    return {
        "policy": policy,
        "trainable": report.trainable,
        "total": report.total,
        "steps": steps,
        "seconds_per_step": seconds,
        "loss": float(loss.detach()),
        "rss_before_steps_mb": resident,
        "peak_rss_steps_mb": _rss_mb("VmHWM") if reset else None,
        "peak_rss_build_mb": build_peak,
    }


def handle(args: dict) -> dict:
    setup_torch()
    part = args.get("part", "forward")
    family = args.get("family")
    if part == "forward":
        result = _forward(family, int(args["repeats"]))
    elif part == "bf16":
        result = _bf16(family, int(args["repeats"]))
    elif part == "save-backbones":
        result = _save_backbones(args["folder"])
    elif part == "train":
        result = _train(family, args["folder"], args["policy"], int(args["steps"]))
    else:
        raise ValueError(f"unknown part {part!r}")
    return {"family": family, "part": part, **result, "peak_rss_mb": peak_rss_mb(), "load": loadavg()}


# ---------------------------------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------------------------------
def parse_selection(text: str | None, known: tuple[str, ...], what: str) -> list[str]:
    """Comma-separated names, each among `known` (None or empty: all of them, in `known` order)."""
    if not text:
        return list(known)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; choose among {list(known)}")
    return names


def _worker(args: dict, timeout: float = 3600) -> dict | None:
    """One configuration in its own process; a failed one is printed and skipped (None), the others still run."""
    label = f"families {args.get('family')} {args.get('part')} {args.get('policy', '')}".strip()
    load_start = LOAD.note(label)
    result = run_worker("bench_families", args, timeout=timeout)
    if "error" in result:
        print(f"\n[{label}] FAILED: {result['error']}", flush=True)
        return None
    result["load_start"] = load_start
    result["load_end"] = LOAD.note("families end")
    return result


def _gaps_text(gaps: dict | None) -> str:
    if not gaps:
        return "-"
    return ", ".join(f"{name.removesuffix('_embeds')} {100 * gap:.2f} %" for name, gap in gaps.items())


def _load_text(result: dict) -> str:
    return f"{result['load_start']:.1f}-{result['load_end']:.1f}"


def run(quick: bool = False, families=None, parts=None, repeats: int | None = None, **unused) -> dict:
    families = list(families or FAMILIES)
    parts = list(parts or PARTS)
    repeats = repeats or (1 if quick else 2)
    report = {"forward": {}, "bf16": {}, "train": {}, "tables": []}
    if "forward" in parts:
        rows = []
        for family in families:
            result = _worker({"part": "forward", "family": family, "repeats": repeats})
            if result is None:
                continue
            original = ORIGINAL[family]
            result["utilisation_ratio_vs_original"] = result["utilisation"] / original["utilisation"]
            report["forward"][family] = result
            rows.append([LABEL[family], result["gflop_per_clip"], result["seconds_per_clip"], result["achieved_gflops"],
                         result["matmul_gflops"], f"{100 * result['utilisation']:.0f} %",
                         f"{100 * original['utilisation']:.0f} % ({original['seconds']} s)",
                         f"{result['utilisation_ratio_vs_original']:.2f}x",
                         f"{result['peak_rss_mb']:.0f} MB (original {original['peak_rss_mb']} MB)",
                         _load_text(result)])
        report["tables"].append(print_table(
            f"Full-size forward, one clip, fp32, inference_mode (median of {repeats} after a warm-up; one process each)",
            ["model", "GFLOP / clip", "s / clip", "GFLOP/s", "in-run fp32 matmul GFLOP/s", "utilisation",
             "original's utilisation (s/clip, AMX machine)", "utilisation ratio", "peak RSS", "load"],
            rows,
        ))
    if "bf16" in parts:
        rows = []
        for family in families:
            result = _worker({"part": "bf16", "family": family, "repeats": repeats})
            if result is None:
                continue
            report["bf16"][family] = result
            for name in ("fp32", "bf16"):
                row = result["rows"][name]
                rows.append([LABEL[family], name, row["seconds_per_clip"], f"{row.get('x_fp32', 1.0):.2f}x",
                             row["achieved_gflops"], row["linear_gflops"], f"{100 * row['utilisation']:.0f} %",
                             _gaps_text(row.get("output_gaps")), _load_text(result)])
        hardware = "AVX512-BF16 or AMX present" if report["bf16"] and next(iter(report["bf16"].values()))[
            "native_bf16"] else "no native bf16 (emulated)"
        report["tables"].append(print_table(
            f"bf16 weights vs fp32, full-size forward, one clip, one process per model holding both copies, calls "
            f"interleaved ({repeats} rounds; {hardware}; process peak RSS: "
            + ", ".join(f"{family} {r['peak_rss_mb']:.0f} MB" for family, r in report["bf16"].items()) + ")",
            ["model", "weights", "s / clip", "x fp32", "GFLOP/s", "in-run F.linear GFLOP/s (same dtype)",
             "share of linear", "max abs diff / max abs fp32 value, per output", "load"],
            rows,
        ))
    if "train" in parts:
        selected = [family for family in families if family in TRAINABLE_FAMILIES]
        if selected:
            steps = 1 if quick else 2
            rows = []
            with tempfile.TemporaryDirectory(prefix="hf_av_backbones_") as folder:
                saved = _worker({"part": "save-backbones", "folder": folder}) is not None
                for family in selected if saved else ():
                    report["train"][family] = {}
                    for policy in ("frozen-backbone", "all"):
                        result = _worker({"part": "train", "family": family, "folder": folder, "policy": policy,
                                          "steps": steps})
                        if result is not None:
                            report["train"][family][policy] = result
                    runs = report["train"][family]
                    full = runs.get("all")
                    for result in runs.values():
                        rows.append([LABEL[family], result["policy"], f"{result['trainable']:,}",
                                     f"{result['total']:,}", result["peak_rss_steps_mb"],
                                     f"{result['peak_rss_steps_mb'] / full['peak_rss_steps_mb']:.2f}" if full else "-",
                                     result["peak_rss_mb"], result["seconds_per_step"][-1], _load_text(result)])
            report["tables"].append(print_table(
                f"Training step memory (forward with labels + backward + AdamW step, one 10-segment clip, {steps} "
                "step(s); one process per row)",
                ["model", "trainable", "trainable parameters", "total parameters", "peak RSS of the steps MB",
                 "vs all trainable", "process peak RSS MB (incl. building)", "s / step (last)", "load"],
                rows,
            ))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--parts", default="forward")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 2; --quick 1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker_main(handle)
        return
    try:
        families = parse_selection(args.families, FAMILIES, "families")
        parts = parse_selection(args.parts, PARTS, "parts")
    except ValueError as error:
        parser.error(str(error))
    report = run(quick=args.quick, families=families, parts=parts, repeats=args.repeats)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
