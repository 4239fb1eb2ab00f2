"""hf_av benchmark suite: our figure, the peer's figure measured in the same run, and the ratio.

    python benchmarks/run.py [--quick] [--only fbank,decode,model,train,compile,bf16,families,profile] [--json out.json]
                             [--batch-sizes 1,4,8] [--precisions fp32,bf16-autocast,bf16-weights]
                             [--families lavish,dg-sct,vatt] [--family-parts forward,bf16,train]

Items: fbank (Kaldi fbank vs Transformers' AST NumPy path and a per-clip torch reference), decode (mp4 ->
model-ready tensors with DataLoader workers vs a naive two-pass PyAV loop), model (full-size CAV-MAE forward,
fp32/bf16, B = 1, 4, 8, SDPA vs eager, FLOP utilisation), train (training step), compile (torch.compile),
bf16 (fp32 / bf16 autocast / bf16 weights interleaved in one process at one batch size, with the in-run
F.linear rates; not in the default set), families (full-size LAVisH / DG-SCT / VATT-BBS: fp32 forward utilisation
against the originals', bf16 vs fp32 interleaved, LAVisH / DG-SCT training-step memory with the backbone frozen vs
all trainable; `benchmarks/bench_families.py`; not in the default set), profile (torch.profiler / cProfile tables;
not part of the default set). Full-size model items start one subprocess per configuration (peak memory per
configuration). The machine load (/proc/loadavg) is sampled
around every item and reported: figures taken at a load well above 2 (two cores) are contended.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_families import FAMILIES, parse_selection  # noqa: E402
from benchmarks.bench_families import PARTS as FAMILY_PARTS  # noqa: E402
from benchmarks.common import LOAD, NUM_THREADS, setup_torch  # noqa: E402

DEFAULT_ITEMS = ("fbank", "decode", "model", "train", "compile")
ALL_ITEMS = DEFAULT_ITEMS + ("bf16", "families", "profile")
MODEL_ITEMS = ("model", "train", "compile", "bf16")  # the items that take --batch-sizes / --precisions
PRECISIONS = ("fp32", "bf16-autocast", "bf16-weights")


def _item(name: str):
    from benchmarks import bench_bf16, bench_decode, bench_families, bench_fbank, bench_model, bench_profile

    return {
        "fbank": bench_fbank.run,
        "decode": bench_decode.run,
        "model": bench_model.run_forward,
        "train": bench_model.run_train,
        "compile": bench_model.run_compile,
        "bf16": bench_bf16.run,
        "families": bench_families.run,
        "profile": bench_profile.run,
    }[name]


def _environment() -> dict:
    import av
    import numpy
    import torch
    import transformers

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": NUM_THREADS,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "av": av.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, B = 1, 4 only, fewer configurations")
    parser.add_argument("--only", default=",".join(DEFAULT_ITEMS),
                        help=f"comma-separated items among {','.join(ALL_ITEMS)} (default: {','.join(DEFAULT_ITEMS)})")
    parser.add_argument("--json", type=Path, help="write every figure (and the tables) to this JSON file")
    parser.add_argument("--batch-sizes", help="model/train/compile items: only these batch sizes, e.g. 8 or 1,4")
    parser.add_argument("--bf16-compile", action="store_true",
                        help="bf16 item: also time bf16 weights under torch.compile (inductor; minutes to compile)")
    parser.add_argument("--precisions", help="model/train/compile items: only these precisions among "
                        f"{','.join(PRECISIONS)}")
    parser.add_argument("--families", help=f"families item: only these among {','.join(FAMILIES)}")
    parser.add_argument("--family-parts", help=f"families item: only these parts among {','.join(FAMILY_PARTS)}")
    args = parser.parse_args(argv)
    items = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(items) - set(ALL_ITEMS))
    if unknown:
        parser.error(f"unknown item(s) {unknown}; choose among {list(ALL_ITEMS)}")
    model_filters = {"batch_sizes": None, "precisions": None}
    if args.batch_sizes:
        try:
            model_filters["batch_sizes"] = {int(b) for b in args.batch_sizes.split(",") if b.strip()}
        except ValueError:
            parser.error(f"--batch-sizes takes comma-separated integers, got {args.batch_sizes!r}")
    if args.precisions:
        model_filters["precisions"] = {p.strip() for p in args.precisions.split(",") if p.strip()}
        wrong = sorted(model_filters["precisions"] - set(PRECISIONS))
        if wrong:
            parser.error(f"unknown precision(s) {wrong}; choose among {list(PRECISIONS)}")

    family_filters = {}
    try:
        family_filters["families"] = parse_selection(args.families, FAMILIES, "family")
        family_filters["parts"] = parse_selection(args.family_parts, FAMILY_PARTS, "family part")
    except ValueError as error:
        parser.error(str(error))

    setup_torch()
    env = _environment()
    print(f"# hf_av benchmarks {'(quick) ' if args.quick else ''}{env['date']}")
    print(f"{env['cpu']}, {env['cores']} cores, torch threads {env['threads']}; torch {env['torch']}, "
          f"transformers {env['transformers']}, numpy {env['numpy']}, av {env['av']}")
    print(f"load average at start: {LOAD.note('start'):.2f}")
    report = {"environment": env, "quick": args.quick, "items": {}}
    started = time.perf_counter()
    for name in items:
        t0 = time.perf_counter()
        try:
            extra = model_filters if name in MODEL_ITEMS else {}
            if name == "bf16":
                extra = {**extra, "compile_model": args.bf16_compile}
            if name == "families":
                extra = family_filters
            report["items"][name] = _item(name)(quick=args.quick, **extra)
        except Exception as exc:  # one broken item must not hide the others
            print(f"\n[{name}] FAILED: {type(exc).__name__}: {exc}", flush=True)
            report["items"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        report["items"][name]["elapsed_s"] = time.perf_counter() - t0
        print(f"[{name}] {report['items'][name]['elapsed_s']:.0f} s, load average {LOAD.note(name + ' end'):.2f}", flush=True)
    load = LOAD.summary()
    report["load"] = {**load, "samples": LOAD.samples}
    report["elapsed_s"] = time.perf_counter() - started
    print(f"\ntotal {report['elapsed_s']:.0f} s; 1-min load average over the run: min {load['min']:.2f}, "
          f"median {load['median']:.2f}, max {load['max']:.2f} ({load['n']} samples; 2 cores)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
