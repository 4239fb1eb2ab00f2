"""Shared helpers of the benchmark suite: timing, machine load, matmul peak, per-configuration subprocesses, tables.

Every timed figure is the median (and min) of ``repeats`` calls after ``warmup`` calls, measured with
``time.perf_counter`` in the same process run as the peer it is compared with.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
NUM_THREADS = 2


def setup_torch(threads: int = NUM_THREADS) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)


@dataclass
class Timing:
    """Seconds per call over the timed repeats."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.min, "max_s": self.max, "samples_s": self.samples}


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def loadavg() -> float:
    """1-minute load average (the machine has 2 cores: > 2 means someone else is computing)."""
    try:
        with open("/proc/loadavg") as handle:
            return float(handle.read().split()[0])
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


@dataclass
class LoadLog:
    """Load-average samples taken around every measured item."""

    samples: list[tuple[str, float]] = field(default_factory=list)

    def note(self, label: str) -> float:
        value = loadavg()
        self.samples.append((label, value))
        return value

    def summary(self) -> dict:
        values = [v for _, v in self.samples]
        if not values:
            return {}
        return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


LOAD = LoadLog()


def peak_rss_mb() -> float:
    """Peak resident set size of this process: ``VmHWM`` of ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries it over ``fork`` + ``exec``, so a worker started by a large parent reported
    the parent's peak (every fbank worker of one run showed the runner's 836 MB).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------------------------------
# Matmul peak of this machine, measured in the same run
# ---------------------------------------------------------------------------------------------------------------------
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16: without them oneDNN emulates bf16 and it is slower than fp32."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:  # pragma: no cover - not Linux
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# (kind, m, k, n): "mm" = torch.mm(a[m,k], b[k,n]); "linear" = F.linear(a[m,k], w[n,k]) as nn.Linear runs it
MATMUL_SHAPES = {
    "mm 2048^3": ("mm", 2048, 2048, 2048),
    "linear ViT-B MLP [2832,768]->3072": ("linear", 2832, 768, 3072),
}
BF16_EMULATED_SHAPES = {  # smaller, so the slow emulated path stays within seconds
    "mm 512^3": ("mm", 512, 512, 512),
    "linear ViT-B MLP [2832,768]->3072": ("linear", 2832, 768, 3072),
}


def matmul_gflops(dtype: torch.dtype, repeats: int = 7, shapes: dict | None = None) -> dict[str, dict]:
    """GFLOP/s of the anchor shapes (median and best of ``repeats``)."""
    results = {}
    generator = torch.Generator().manual_seed(0)
    for name, (kind, m, k, n) in (shapes or MATMUL_SHAPES).items():
        a = torch.randn(m, k, generator=generator).to(dtype)
        if kind == "mm":
            b = torch.randn(k, n, generator=generator).to(dtype)
            call = lambda a=a, b=b: torch.mm(a, b)  # noqa: E731
        else:
            w = torch.randn(n, k, generator=generator).to(dtype)
            call = lambda a=a, w=w: torch.nn.functional.linear(a, w)  # noqa: E731
        flops = 2.0 * m * k * n
        timing = time_calls(call, repeats=repeats, warmup=1)
        results[name] = {
            "gflops_median": flops / timing.median / 1e9,
            "gflops_best": flops / timing.min / 1e9,
            **timing.as_dict(),
        }
    return results


def matmul_peak(dtype: torch.dtype, repeats: int = 7) -> tuple[float, dict]:
    """The machine's reference rate for utilisation: the higher of the shapes' median GFLOP/s (the stricter)."""
    if dtype == torch.bfloat16 and not cpu_has_native_bf16():
        table = matmul_gflops(dtype, min(repeats, 3), BF16_EMULATED_SHAPES)
    else:
        table = matmul_gflops(dtype, repeats)
    return max(row["gflops_median"] for row in table.values()), table


# ---------------------------------------------------------------------------------------------------------------------
# One configuration per subprocess (peak memory is per process)
# ---------------------------------------------------------------------------------------------------------------------
def run_worker(module: str, args: dict, timeout: float = 900.0) -> dict:
    """Run ``python -m benchmarks.<module> --worker '<json>'`` and return the JSON it prints last."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(NUM_THREADS))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", f"benchmarks.{module}", "--worker", json.dumps(args)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout)[-2000:]
        return {"error": f"worker {module} {args} failed (exit {completed.returncode}): {tail}"}
    return json.loads(lines[-1])


def worker_main(handler: Callable[[dict], dict]) -> None:
    """Entry of a worker process: parse ``--worker JSON``, run, print one JSON line."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = json.loads(parser.parse_args().worker)
    setup_torch(args.get("threads", NUM_THREADS))
    result = handler(args)
    result["peak_rss_mb"] = peak_rss_mb()
    result["loadavg_end"] = loadavg()
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------------
def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def print_table(title: str, header: list[str], rows: list[list]) -> str:
    """Print (and return) a Markdown table."""
    lines = [f"\n### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(cell) for cell in row) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """Time several callables round-robin (a, b, c, a, b, c, ...), so that a change of machine load during the
    measurement hits all of them alike and their ratio stays meaningful."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: Timing(values) for name, values in samples.items()}
