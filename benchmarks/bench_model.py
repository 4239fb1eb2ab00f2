"""Full-size CAV-MAE (default `CavMaeConfig`) forward, training step and torch.compile, CPU fp32 / bf16.

Every configuration runs in its own subprocess (``python -m benchmarks.bench_model --worker JSON``) so that its
peak RSS (``ru_maxrss``) is its own. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (2 x MAC of
matmul / addmm / bmm / conv / SDPA) at B=1 and scale linearly with B. Utilisation = achieved GFLOP/s divided by
this run's ``torch.mm`` rate of the same dtype (the higher of 2048^3 and the ViT-B MLP shape, i.e. the stricter).

Peer row: ``attn_implementation="eager"`` -- the original CAV-MAE's attention (explicit ``q @ k^T``, softmax,
``@ v``), same weights, same run. Ours: ``"sdpa"`` (``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import contextlib
import time

import torch

from .common import LOAD, cpu_has_native_bf16, matmul_peak, print_table, run_worker, time_calls, worker_main

NUM_LABELS = 527  # AudioSet head, as the anchor's CAVMAEFT(label_dim=527)


# ---------------------------------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------------------------------
def _rss_now_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def build(kind: str, attn: str, precision: str):
    from hf_av import CavMaeConfig, CavMaeForAudioVisualClassification, CavMaeForPreTraining

    torch.manual_seed(0)
    if kind == "pretrain":
        model = CavMaeForPreTraining(CavMaeConfig())
    else:
        model = CavMaeForAudioVisualClassification(CavMaeConfig(num_labels=NUM_LABELS))
    model.set_attn_implementation(attn)
    if precision == "bf16-weights":
        model = model.to(torch.bfloat16)
    model.train(kind in ("pretrain", "finetune"))
    return model


def make_inputs(batch: int, config, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    inputs = {
        "input_values": torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(batch, config.num_channels, config.image_size, config.image_size, generator=generator),
    }
    return inputs


def _autocast(precision: str):
    if precision == "bf16-autocast":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(model, kind: str, precision: str, batch: int, compile_model: bool = False):
    """A zero-argument callable running one measured call; returns (callable, logits-or-None getter)."""
    config = model.config
    inputs = make_inputs(batch, config)
    if kind == "pretrain":
        generator = torch.Generator().manual_seed(2)
        inputs["audio_noise"] = torch.rand(batch, config.num_audio_patches, generator=generator)
        inputs["visual_noise"] = torch.rand(batch, config.num_visual_patches, generator=generator)
    labels = None
    if kind == "finetune":
        labels = (torch.rand(batch, NUM_LABELS, generator=torch.Generator().manual_seed(3)) < 0.02).float()
    forward = torch.compile(model) if compile_model else model

    if kind == "forward":
        def step():
            with torch.inference_mode(), _autocast(precision):
                return forward(**inputs).logits
        return step

    def train_step():
        with _autocast(precision):
            output = forward(**inputs, labels=labels) if labels is not None else forward(**inputs)
        output.loss.backward()
        model.zero_grad(set_to_none=True)
        return output.loss.detach()
    return train_step


def count_flops(kind: str, attn: str) -> float:
    """FLOPs of one B=1 call (forward; or forward + backward for training kinds)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(kind, attn, "fp32")
    step = make_step(model, kind, "fp32", 1)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def worker_peak(precision: str) -> float:
    """Median GFLOP/s of the ViT-B MLP linear ([2832,768] -> 3072; [708,768] for emulated bf16) in this dtype."""
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    rows = 2832 if dtype == torch.float32 or cpu_has_native_bf16() else 708
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(rows, 768, generator=generator).to(dtype)
    w = torch.randn(3072, 768, generator=generator).to(dtype)
    timing = time_calls(lambda: torch.nn.functional.linear(a, w), repeats=5, warmup=1)
    return 2.0 * rows * 768 * 3072 / timing.median / 1e9


def handle(args: dict) -> dict:
    kind, attn, precision = args["kind"], args["attn"], args.get("precision", "fp32")
    if args.get("flops"):
        return {"flops_per_clip": count_flops(kind, attn)}
    batch = int(args["batch"])
    start = time.perf_counter()
    model = build(kind, attn, precision)
    build_s = time.perf_counter() - start
    rss_model = _rss_now_mb()
    step = make_step(model, kind, precision, batch, compile_model=bool(args.get("compile")))
    result = {"build_s": build_s, "rss_after_build_mb": rss_model}
    if args.get("compile"):
        start = time.perf_counter()
        step()
        result["first_call_s"] = time.perf_counter() - start
    before = worker_peak(precision)
    timing = time_calls(step, repeats=int(args["repeats"]), warmup=int(args.get("warmup", 1)))
    after = worker_peak(precision)
    result.update(timing.as_dict())
    # the machine is shared: the utilisation denominator is measured in this process right before and after
    # the timed calls (the higher of the two), so model and matmul see the same contention
    result["matmul_gflops_before_after"] = [before, after]
    result["matmul_gflops"] = max(before, after)
    if kind == "forward":
        logits = step().float()
        result["logits0"] = logits[0].tolist()
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------------------------------
_FLOPS_CACHE: dict[tuple[str, str], float] = {}
_PEAK_CACHE: dict[str, tuple[float, dict]] = {}


def flops_per_clip(kind: str) -> float:
    if (kind, "sdpa") not in _FLOPS_CACHE:
        # counted with the eager path: FlopCounterMode has no formula for the CPU flash-attention op SDPA uses
        result = run_worker("bench_model", {"kind": kind, "attn": "eager", "flops": True})
        if "error" in result:
            raise RuntimeError(result["error"])
        _FLOPS_CACHE[(kind, "sdpa")] = result["flops_per_clip"]
    return _FLOPS_CACHE[(kind, "sdpa")]


def peaks() -> dict[str, tuple[float, dict]]:
    if not _PEAK_CACHE:
        LOAD.note("matmul peak")
        _PEAK_CACHE["fp32"] = matmul_peak(torch.float32)
        _PEAK_CACHE["bf16"] = matmul_peak(torch.bfloat16)
    return _PEAK_CACHE


def peak_table() -> str:
    rows = []
    for dtype, (_, table) in peaks().items():
        for shape, row in table.items():
            rows.append([dtype, shape, row["gflops_median"], row["gflops_best"]])
    return print_table("this run's matmul rate in the parent process (2 threads; utilisation below uses the ViT-B MLP linear rate measured inside each configuration's process before/after its timed calls)", ["dtype", "shape", "GFLOP/s median", "GFLOP/s best"], rows)


def _measure(kind: str, attn: str, precision: str, batch: int, repeats: int, **extra) -> dict:
    LOAD.note(f"{kind} {attn} {precision} B={batch}")
    result = run_worker("bench_model", {"kind": kind, "attn": attn, "precision": precision, "batch": batch,
                                        "repeats": repeats, **extra})
    if "error" in result:
        print(result["error"], flush=True)
        return result
    flops = flops_per_clip(kind) * batch
    peak = result["matmul_gflops"]
    result["clips_per_s"] = batch / result["median_s"]
    result["gflops_per_s"] = flops / result["median_s"] / 1e9
    result["utilisation"] = result["gflops_per_s"] / peak
    return result


def _util(result: dict) -> str:
    return f"{100 * result['utilisation']:.0f}% of {result['matmul_gflops']:.0f}"


def _logit_agreement(reference: list[float], other: list[float]) -> dict:
    a, b = torch.tensor(reference), torch.tensor(other)
    return {
        "max_abs": (a - b).abs().max().item(),
        "ref_std": a.std().item(),
        "rel": ((a - b).abs().max() / a.abs().max()).item(),
        "cosine": torch.nn.functional.cosine_similarity(a, b, dim=0).item(),
        "top1_equal": bool(a.argmax() == b.argmax()),
        "top5_overlap": len(set(a.topk(5).indices.tolist()) & set(b.topk(5).indices.tolist())),
    }


BF16_LOGIT_TOLERANCE = 0.05  # max |logit_bf16 - logit_fp32| <= 5 % of max |logit_fp32| (same weights, same clip)


def _bf16_batches(batches: tuple[int, ...]) -> tuple[int, ...]:
    """All batch sizes with native bf16 (AMX / AVX512-BF16); B=1 only where oneDNN emulates bf16 (slow)."""
    return batches if cpu_has_native_bf16() else batches[:1]


def _selected(configs: list, batch_sizes, precisions, batch_at: int, precision_at: int) -> list:
    """The configurations left by `--batch-sizes` / `--precisions` (None keeps all)."""
    return [c for c in configs
            if (batch_sizes is None or c[batch_at] in batch_sizes) and (precisions is None or c[precision_at] in precisions)]


def run_forward(quick: bool = False, batch_sizes=None, precisions=None) -> dict:
    batches = (1, 4) if quick else (1, 4, 8)
    all_precisions = ("fp32", "bf16-autocast") if quick else ("fp32", "bf16-autocast", "bf16-weights")
    repeats = 2
    plan = [(p, b) for p in all_precisions for b in (batches if p == "fp32" else _bf16_batches(batches))]
    plan = _selected(plan, batch_sizes, precisions, batch_at=1, precision_at=0)
    peak_text = peak_table()
    gflop = flops_per_clip("forward") / 1e9
    results: dict = {}
    for precision, batch in plan:
        for attn in ("eager", "sdpa"):
            reps = repeats if precision == "fp32" or cpu_has_native_bf16() else 1
            results[(precision, batch, attn)] = _measure("forward", attn, precision, batch, reps)
    rows = []
    for precision, batch in plan:
        peer, ours = results[(precision, batch, "eager")], results[(precision, batch, "sdpa")]
        if "error" in peer or "error" in ours:
            rows.append([precision, batch, "error", "-", "-", "-", "-", "-", "-", "-"])
            continue
        if precision == "fp32":
            target = "util>=75%: " + ("yes" if ours["utilisation"] >= 0.75 else "NO")
        elif ("fp32", batch, "sdpa") not in results:
            target = "(no fp32 row selected to compare with)"
        else:
            base = results[("fp32", batch, "sdpa")]
            speedup = ours["clips_per_s"] / base["clips_per_s"]
            agreement = _logit_agreement(base["logits0"], ours["logits0"])
            ours["vs_fp32"] = {"speedup": speedup, **agreement}
            target = (f"{speedup:.2f}x fp32 (>=4x: {'yes' if speedup >= 4 else 'NO'}); logits max|d| "
                      f"{agreement['max_abs']:.3g} = {100 * agreement['rel']:.2g}% of max|logit| "
                      f"(<=5%: {'yes' if agreement['rel'] <= BF16_LOGIT_TOLERANCE else 'NO'}), cos {agreement['cosine']:.5f}")
        rows.append([
            precision, batch, ours["clips_per_s"], _util(ours), ours["peak_rss_mb"],
            peer["clips_per_s"], _util(peer), peer["peak_rss_mb"],
            ours["clips_per_s"] / peer["clips_per_s"], target,
        ])
    table = print_table(
        f"CAV-MAE classifier forward (multimodal, 527 labels, {gflop:.1f} GFLOP/clip), inference_mode; "
        "ours = SDPA, peer = eager (original attention style), same run",
        ["precision", "B", "SDPA clips/s", "SDPA util", "SDPA peak RSS MB", "eager clips/s", "eager util",
         "eager peak RSS MB", "ratio SDPA/eager", "target"],
        rows,
    )
    return {"table": peak_text + "\n" + table, "gflop_per_clip": gflop,
            "results": {f"{p}|B={b}|{a}": r for (p, b, a), r in results.items()},
            "peaks": {k: v[1] for k, v in peaks().items()}}


def run_train(quick: bool = False, batch_sizes=None, precisions=None) -> dict:
    pretrain_batches = (4,) if quick else (1, 4, 8)
    configs = [("pretrain", "fp32", b) for b in pretrain_batches]
    if cpu_has_native_bf16():
        configs.append(("pretrain", "bf16-autocast", 4))
    elif not quick:  # emulated bf16 is several times slower than fp32 here: one small configuration shows it
        configs.append(("pretrain", "bf16-autocast", 1))
    if not quick:
        configs.append(("finetune", "fp32", 1))
    configs = _selected(configs, batch_sizes, precisions, batch_at=2, precision_at=1)
    results: dict = {}
    rows = []
    for kind, precision, batch in configs:
        repeats = 2 if batch <= 4 and (precision == "fp32" or cpu_has_native_bf16()) else 1
        for attn in ("eager", "sdpa"):
            results[(kind, precision, batch, attn)] = _measure(kind, attn, precision, batch, repeats)
        peer, ours = results[(kind, precision, batch, "eager")], results[(kind, precision, batch, "sdpa")]
        if "error" in peer or "error" in ours:
            rows.append([kind, precision, batch, "error", "-", "-", "-", "-", "-", "-", "-"])
            continue
        if kind == "pretrain" and precision == "fp32":
            target = "util>=60%: " + ("yes" if ours["utilisation"] >= 0.60 else "NO")
        elif precision != "fp32":
            base = results.get((kind, "fp32", batch, "sdpa")) or results.get((kind, "fp32", 4, "sdpa"))
            target = f"{ours['clips_per_s'] / base['clips_per_s']:.2f}x fp32 clips/s" if base and "error" not in base else "-"
        else:
            target = "-"
        rows.append([
            kind, precision, batch, ours["median_s"], ours["clips_per_s"], _util(ours),
            ours["peak_rss_mb"], peer["median_s"], _util(peer), peer["peak_rss_mb"],
            peer["median_s"] / ours["median_s"], target,
        ])
    gflop_pt = flops_per_clip("pretrain") / 1e9
    header = ["model", "precision", "B", "SDPA s/step", "SDPA clips/s", "SDPA util", "SDPA peak RSS MB",
              "eager s/step", "eager util", "eager peak RSS MB", "ratio", "target"]
    title = (f"training step = forward + loss.backward() (no optimizer step, as the anchor), train mode; pretrain = "
             f"CavMaeForPreTraining mask 0.75/0.75, encoder on visible tokens ({gflop_pt:.1f} GFLOP/clip fwd+bwd)")
    if not quick:
        title += f"; finetune = classifier + BCE ({flops_per_clip('finetune') / 1e9:.1f} GFLOP/clip fwd+bwd)"
    table = print_table(title, header, rows)
    return {"table": table, "results": {"|".join(map(str, k)): r for k, r in results.items()}}


def run_compile(quick: bool = False, batch_sizes=None, precisions=None) -> dict:
    repeats = 2
    configs = [("fp32", 1)] if quick else [("fp32", 1), ("fp32", 4)]
    if not quick and cpu_has_native_bf16():
        configs.append(("bf16-autocast", 4))
    configs = _selected(configs, batch_sizes, precisions, batch_at=1, precision_at=0)
    rows, results = [], {}
    for precision, batch in configs:
        eager_mode = _measure("forward", "sdpa", precision, batch, repeats)
        compiled = _measure("forward", "sdpa", precision, batch, repeats, compile=True)
        results[f"{precision}|B={batch}"] = {"not_compiled": eager_mode, "compiled": compiled}
        if "error" in compiled or "error" in eager_mode:
            rows.append([precision, batch, "error", "-", "-", "-", "-", "-"])
            continue
        diff = _logit_agreement(eager_mode["logits0"], compiled["logits0"])["max_abs"]
        rows.append([precision, batch, compiled["clips_per_s"], _util(compiled),
                     compiled["first_call_s"], eager_mode["clips_per_s"],
                     compiled["clips_per_s"] / eager_mode["clips_per_s"], f"{diff:.2e}"])
    table = print_table(
        "torch.compile(model) (inductor, default mode) on the SDPA classifier forward, vs the same model not compiled",
        ["precision", "B", "compiled clips/s", "compiled util", "first call (compile) s", "not compiled clips/s",
         "ratio", "logits max|diff|"],
        rows,
    )
    return {"table": table, "results": results}




if __name__ == "__main__":
    worker_main(handle)
