"""Where the time goes: torch.profiler of the full-size model (forward, training step, bf16 forward) and
cProfile + torch.profiler of preprocessing (file -> tensors, and the fbank feature extractor)."""

from __future__ import annotations

import cProfile
import io
import pstats

from .common import LOAD, print_table, run_worker, worker_main


def _op_rows(prof, top: int) -> tuple[list[list], float]:
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    rows = [[e.key, f"{100 * e.self_cpu_time_total / total:.1f}%", e.self_cpu_time_total / 1e3, e.count] for e in ranked]
    return rows, total / 1e3


def profile_model(what: str, batch: int, top: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from .bench_model import build, make_step

    kind, precision = {"forward": ("forward", "fp32"), "forward-bf16": ("forward", "bf16-autocast"),
                       "pretrain": ("pretrain", "fp32")}[what]
    model = build(kind, "sdpa", precision)
    step = make_step(model, kind, precision, batch)
    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    rows, total_ms = _op_rows(prof, top)
    return {"rows": rows, "total_ms": total_ms}


def profile_preprocessing(top: int) -> dict:
    from hf_av import CavMaeFeatureExtractor, CavMaeProcessor

    from .bench_fbank import make_clips
    from .media_fixtures import benchmark_clips

    paths = benchmark_clips(4)
    processor = CavMaeProcessor()
    processor(videos=paths[0], return_tensors="pt")  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths:
        processor(videos=path, return_tensors="pt")
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime")
    rows = []
    total = stats.total_tt
    for func, (cc, nc, tt, ct, callers) in sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]:
        filename, line, name = func
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append([f"{short}:{line} {name}", f"{100 * tt / total:.1f}%", 1e3 * tt / len(paths), 1e3 * ct / len(paths), nc])

    from torch.profiler import ProfilerActivity, profile

    clips = list(make_clips())
    extractor = CavMaeFeatureExtractor()
    extractor(clips, sampling_rate=16000, return_tensors="pt")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        extractor(clips, sampling_rate=16000, return_tensors="pt")
    fe_rows, fe_total = _op_rows(prof, top)
    return {"decode_rows": rows, "decode_total_ms_per_clip": 1e3 * total / len(paths),
            "fe_rows": fe_rows, "fe_total_ms": fe_total}


def handle(args: dict) -> dict:
    if args["what"] == "preprocessing":
        return profile_preprocessing(args.get("top", 12))
    return profile_model(args["what"], args.get("batch", 4), args.get("top", 12))


def run(quick: bool = False) -> dict:
    top = 10 if quick else 14
    tables, raw = [], {}
    LOAD.note("profile preprocessing")
    pre = run_worker("bench_profile", {"what": "preprocessing", "top": top})
    raw["preprocessing"] = pre
    if "error" in pre:
        print(pre["error"])
    else:
        tables.append(print_table(
            f"cProfile, CavMaeProcessor()(videos=5 s 720p mp4): {pre['decode_total_ms_per_clip']:.0f} ms/clip "
            "(single process; tottime = own time)",
            ["function", "own %", "own ms/clip", "cumulative ms/clip", "calls (4 clips)"], pre["decode_rows"]))
        tables.append(print_table(
            f"torch.profiler, CavMaeFeatureExtractor()(32 x 10 s): {pre['fe_total_ms']:.0f} ms total self CPU",
            ["op", "self CPU %", "self ms", "calls"], pre["fe_rows"]))
    whats = ("forward", "pretrain") if quick else ("forward", "forward-bf16", "pretrain")
    for what in whats:
        LOAD.note(f"profile {what}")
        result = run_worker("bench_profile", {"what": what, "batch": 4, "top": top})
        raw[what] = result
        if "error" in result:
            print(result["error"])
            continue
        label = {"forward": "classifier forward fp32 SDPA B=4", "forward-bf16": "classifier forward bf16 autocast SDPA B=4",
                 "pretrain": "pre-training fwd+bwd fp32 SDPA B=4"}[what]
        tables.append(print_table(f"torch.profiler, {label}: {result['total_ms']:.0f} ms self CPU",
                                  ["op", "self CPU %", "self ms", "calls"], result["rows"]))
    return {"table": "\n".join(tables), "raw": raw}


if __name__ == "__main__":
    worker_main(handle)
