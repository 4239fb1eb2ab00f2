"""bf16 vs fp32 for the full-size CAV-MAE classifier at one batch size, all in ONE process, calls interleaved.

Per round: fp32 forward, bf16 autocast (fp32 weights), bf16 weights (``dtype=torch.bfloat16`` as users get it from
``from_pretrained``), optionally bf16 weights under ``torch.compile`` (inductor), and the ViT-B MLP ``F.linear`` rate
in fp32 and in bf16 ([2832,768] -> 3072). Utilisation = model GFLOP/s (FlopCounterMode count, 132.4 GFLOP/clip) over
the in-run linear rate of the same dtype. Logits are compared with fp32 (max |diff| / max |logit|).

Run as its own item: ``python benchmarks/run.py --only bf16 [--batch-sizes 8]`` (add ``--bf16-compile`` for the
compiled row; compilation takes minutes on 2 cores).
"""

from __future__ import annotations

import statistics
import time

import torch

from .common import LOAD, cpu_has_native_bf16, peak_rss_mb, print_table, run_worker, worker_main

GFLOP_PER_CLIP_FALLBACK = 132.4  # FlopCounterMode count of the default config (benchmarks/RESULTS.md)


def _linear_rate(dtype: torch.dtype, repeats: int = 3) -> float:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2832, 768, generator=generator).to(dtype)
    w = torch.randn(3072, 768, generator=generator).to(dtype)
    torch.nn.functional.linear(a, w)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(a, w)
        samples.append(time.perf_counter() - start)
    return 2.0 * 2832 * 768 * 3072 / statistics.median(samples) / 1e9


def handle(args: dict) -> dict:
    from hf_av import CavMaeConfig, CavMaeForAudioVisualClassification

    from .bench_model import NUM_LABELS, count_flops, make_inputs

    batch, repeats = int(args["batch"]), int(args["repeats"])
    gflop = count_flops("forward", "eager") / 1e9 if args.get("count_flops") else GFLOP_PER_CLIP_FALLBACK
    torch.manual_seed(0)
    model = CavMaeForAudioVisualClassification(CavMaeConfig(num_labels=NUM_LABELS)).eval()
    bf16_model = CavMaeForAudioVisualClassification(CavMaeConfig(num_labels=NUM_LABELS)).eval()
    bf16_model.load_state_dict(model.state_dict())
    bf16_model = bf16_model.to(torch.bfloat16)
    inputs = make_inputs(batch, model.config)

    def fp32():
        return model(**inputs).logits

    def autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(**inputs).logits

    def weights():
        return bf16_model(**inputs).logits

    calls = {"fp32": fp32, "bf16-autocast": autocast, "bf16-weights": weights}
    result = {"gflop_per_clip": gflop}
    if args.get("compile"):
        compiled = torch.compile(bf16_model)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(**inputs)
        result["compile_first_call_s"] = time.perf_counter() - start
        calls["bf16-weights + torch.compile"] = lambda: compiled(**inputs).logits
    samples = {name: [] for name in calls}
    rates = {"fp32": [], "bf16": []}
    logits = {}
    with torch.inference_mode():
        for name, call in calls.items():  # warm-up, and the logits compared
            logits[name] = call().float()
        for _ in range(repeats):
            rates["fp32"].append(_linear_rate(torch.float32))
            rates["bf16"].append(_linear_rate(torch.bfloat16))
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
    reference = logits["fp32"]
    result["rows"] = {}
    for name, values in samples.items():
        seconds = statistics.median(values)
        linear = statistics.median(rates["fp32" if name == "fp32" else "bf16"])
        gap = ((logits[name] - reference).abs().max() / reference.abs().max()).item()
        result["rows"][name] = {"samples_s": values, "median_s": seconds, "clips_per_s": batch / seconds,
                                "gflops_per_s": gflop * batch / seconds, "linear_gflops": linear,
                                "share_of_linear": gflop * batch / seconds / linear, "logit_gap": gap}
    result["linear_gflops"] = {k: statistics.median(v) for k, v in rates.items()}
    result["rss_mb_process"] = peak_rss_mb()
    return result


def run(quick: bool = False, batch_sizes=None, precisions=None, compile_model: bool = False, **unused) -> dict:
    batch = max(batch_sizes) if batch_sizes else 8
    repeats = 2 if quick else 3
    load_start = LOAD.note(f"bf16 B={batch}")
    result = run_worker("bench_bf16", {"batch": batch, "repeats": repeats, "compile": compile_model}, timeout=7200)
    load_end = LOAD.note("bf16 end")
    if "error" in result:
        raise RuntimeError(result["error"])
    fp32 = result["rows"]["fp32"]
    rows = []
    for name, row in result["rows"].items():
        rows.append([name, batch, row["clips_per_s"], row["clips_per_s"] / fp32["clips_per_s"], row["gflops_per_s"],
                     row["linear_gflops"], f"{100 * row['share_of_linear']:.0f}%", f"{100 * row['logit_gap']:.2f}%"])
    hardware = "AVX512-BF16" + (" (no AMX)" if cpu_has_native_bf16() else " absent")
    table = print_table(
        f"bf16 vs fp32, full-size CAV-MAE classifier forward, B={batch}, one process, calls interleaved "
        f"({repeats} rounds; {hardware}; load {load_start:.1f}-{load_end:.1f}; process peak RSS "
        f"{result['rss_mb_process']:.0f} MB with an fp32 and a bf16 copy of the model)",
        ["precision", "B", "clips/s", "x fp32", "GFLOP/s", "in-run F.linear GFLOP/s (same dtype)",
         "share of linear", "logits max|d| / max|logit|"],
        rows,
    )
    if "compile_first_call_s" in result:
        print(f"torch.compile first call: {result['compile_first_call_s']:.0f} s")
    return {"table": table, **result, "load": [load_start, load_end]}


if __name__ == "__main__":
    worker_main(handle)
