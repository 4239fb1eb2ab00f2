"""decode+preprocess: mp4 files -> model-ready CAV-MAE tensors (clips/s), DataLoader with 0 / 1 / 2 workers.

ours: ``CavMaeProcessor()(videos=path)`` -- one pass over the container gives audio and the selected frame
(``hf_av.media``: decoding stops at the selected frame, skips H.264 non-reference frames before it, resamples channel 0
only; threaded decoders in the main process, single-threaded in DataLoader workers), then the fbank / frame pipeline.
Besides clips/s, the CPU time per clip (main process + workers, all threads) gives a per-core figure that depends less
on the machine's load.
peer (naive, same run): the anchor-style PyAV loop -- a first pass decodes every video frame (default threading,
keeps the frames CAV-MAE samples), a second pass (seek 0) decodes and resamples the audio to 16 kHz mono;
the SAME feature extractor and image processor then make the tensors, so the difference is the decode strategy.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from .common import LOAD, print_table, run_worker, worker_main
from .media_fixtures import SECONDS, benchmark_clips

_PROCESSOR = None


def _processor():
    global _PROCESSOR
    if _PROCESSOR is None:
        from hf_av import CavMaeProcessor

        _PROCESSOR = CavMaeProcessor()
    return _PROCESSOR


def ours_item(path: str) -> dict:
    out = _processor()(videos=path, return_tensors="pt")
    return {"input_values": out["input_values"][0], "pixel_values": out["pixel_values"][0]}


def naive_item(path: str) -> dict:
    import av

    from hf_av.features.frames import middle_frame_index, opencv_seek_frame_indices

    processor = _processor()
    with av.open(path) as container:
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate)
        total = vstream.frames
        wanted = opencv_seek_frame_indices(total, fps, 10)[middle_frame_index(10)]
        frame_rgb = None
        for index, frame in enumerate(container.decode(vstream)):
            if index == wanted:
                frame_rgb = frame.to_ndarray(format="rgb24")
        container.seek(0)
        astream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = []
        for frame in container.decode(astream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks)
    fbank = processor.feature_extractor([audio], sampling_rate=16000, return_tensors="pt")["input_values"][0]
    pixels = processor.image_processor.preprocess_frames(torch.from_numpy(frame_rgb)[None])[0]
    return {"input_values": fbank, "pixel_values": pixels}


class _Clips(torch.utils.data.Dataset):
    def __init__(self, paths: list[str], item_fn):
        self.paths, self.item_fn = paths, item_fn

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return self.item_fn(self.paths[index])


def _loader(paths: list[str], item_fn, workers: int, batch_size: int = 4):
    loader = torch.utils.data.DataLoader(
        _Clips(paths, item_fn), batch_size=batch_size, num_workers=workers,
        persistent_workers=workers > 0, shuffle=False,
    )
    for _ in loader:  # warm-up: worker start, imports, codec init
        pass
    return loader


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, all its threads (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loader_cpu_seconds(loader) -> float:
    """CPU seconds used so far by this process and the loader's (persistent) worker processes."""
    total = time.process_time()
    iterator = getattr(loader, "_iterator", None)  # persistent workers live on the loader's iterator
    for worker in getattr(iterator, "_workers", None) or []:
        total += _process_cpu_seconds(worker.pid)
    return total


def _epoch(loader) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the main process and the workers) of one epoch over the loader."""
    cpu, start = _loader_cpu_seconds(loader), time.perf_counter()
    for batch in loader:
        assert batch["input_values"].shape[1:] == (1024, 128) and batch["pixel_values"].shape[1:] == (3, 224, 224)
    return time.perf_counter() - start, _loader_cpu_seconds(loader) - cpu


def _throughput_pair(paths: list[str], workers: int, epochs: int) -> tuple[list, list]:
    """(wall, CPU) seconds per epoch of ours and of the peer, alternating epoch by epoch (same process, same load)."""
    ours_loader, peer_loader = _loader(paths, ours_item, workers), _loader(paths, naive_item, workers)
    ours, peer = [], []
    for _ in range(epochs):
        ours.append(_epoch(ours_loader))
        peer.append(_epoch(peer_loader))
    del ours_loader, peer_loader
    return ours, peer


_STAGES = ("end to end: processor(videos=path)", "decode, video + audio (incl. resampling)",
           "of which video only (H.264 up to the selected frame + its RGB conversion)",
           "of which audio only at 16 kHz, channel 0", "of which audio only at 48 kHz 5.1 (no resampling)",
           "fbank (feature extractor)", "frames (rescale + resize + crop + normalise)")


class _StageClips(torch.utils.data.Dataset):
    """Runs the stages of one clip one after the other inside the worker; returns (wall, CPU) seconds per stage."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from hf_av.media import decode_media

        path, processor = self.paths[index], _processor()
        decoded = {}
        steps = (
            lambda: ours_item(path),
            lambda: decoded.setdefault("media", processor.decode(path)),
            lambda: decode_media(path, audio=False, frame_indices=[int(decoded["media"].source_frame_indices[0])]),
            lambda: decode_media(path, video=False, sampling_rate=16000, audio_channels="first"),
            lambda: decode_media(path, video=False),
            lambda: processor.feature_extractor([decoded["media"].audio], sampling_rate=16000, return_tensors="pt"),
            lambda: processor.image_processor.preprocess_frames(torch.from_numpy(np.asarray(decoded["media"].frames))),
        )
        times = []
        for step in steps:
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
        return torch.tensor(times, dtype=torch.float64)


def stage_times(paths: list[str], repeats: int = 2) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds per clip of each step of ``CavMaeProcessor()(videos=path)``, run one after the other in
    two DataLoader workers on the 2 cores (as in training: torch and the decoders single-threaded); each worker's
    first round of clips is a warm-up. CPU seconds count all of a worker's threads: ``SECONDS / cpu`` is x real
    time per core."""
    workers = 2
    warmup = list(paths) * workers
    loader = torch.utils.data.DataLoader(_StageClips(warmup + list(paths) * repeats * workers), batch_size=None,
                                         num_workers=workers)
    samples = torch.stack(list(loader))[len(warmup):]  # [clips, stages, (wall, cpu)]
    medians = samples.median(dim=0).values
    return {name: {"wall_s": float(medians[i, 0]), "cpu_s": float(medians[i, 1])} for i, name in enumerate(_STAGES)}


def handle(args: dict) -> dict:
    """Worker: one configuration alone (its peak RSS: this process and, with workers, its largest child)."""
    import resource

    paths = [benchmark_clips(4)[i % 4] for i in range(args["num_clips"])]
    loader = _loader(paths, ours_item if args["side"] == "ours" else naive_item, args["workers"])
    seconds, _ = _epoch(loader)
    del loader
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"epoch_s": seconds, "largest_child_rss_mb": children}


def run(quick: bool = False, **unused) -> dict:
    distinct = benchmark_clips(4)
    num_clips = 8 if quick else 16
    epochs = 2 if quick else 3
    paths = [distinct[i % len(distinct)] for i in range(num_clips)]

    # same tensors from both paths? (audio differs: ours keeps channel 0 like the original sox remix 1, the peer
    # downmixes)
    a, b = ours_item(paths[0]), naive_item(paths[0])
    pixel_diff = (a["pixel_values"] - b["pixel_values"]).abs().max().item()

    rows, raw = [], {}
    for workers in (0, 1, 2):
        load_start = LOAD.note(f"decode w{workers}")
        ours_s, peer_s = _throughput_pair(paths, workers, epochs)
        load_end = LOAD.note(f"decode w{workers} end")
        ours_rate = num_clips / float(np.median([wall for wall, _ in ours_s]))
        peer_rate = num_clips / float(np.median([wall for wall, _ in peer_s]))
        ours_cpu = float(np.median([cpu for _, cpu in ours_s])) / num_clips
        peer_cpu = float(np.median([cpu for _, cpu in peer_s])) / num_clips
        rss = {side: run_worker("bench_decode", {"side": side, "workers": workers, "num_clips": num_clips}, 1800)
               for side in ("ours", "peer")}

        def rss_text(result: dict) -> str:
            if "error" in result:
                return "error"
            main = result["peak_rss_mb"]
            return f"{main:.0f}" if not workers else f"{main:.0f} + {workers} x {result['largest_child_rss_mb']:.0f}"

        raw[f"workers_{workers}"] = {"ours_epoch_s": ours_s, "peer_epoch_s": peer_s, "ours_clips_per_s": ours_rate,
                                     "peer_clips_per_s": peer_rate, "ours_cpu_s_per_clip": ours_cpu,
                                     "peer_cpu_s_per_clip": peer_cpu, "rss": rss, "load": [load_start, load_end]}
        realtime = ours_rate * SECONDS
        rows.append([f"{workers} (main process)" if workers == 0 else workers, ours_rate, realtime, realtime / 2,
                     1000 * ours_cpu, SECONDS / ours_cpu, rss_text(rss["ours"]), peer_rate, peer_rate * SECONDS,
                     1000 * peer_cpu, rss_text(rss["peer"]), ours_rate / peer_rate, peer_cpu / ours_cpu,
                     f"{load_start:.1f}-{load_end:.1f}"])
    table = print_table(
        f"decode + preprocess, {num_clips} x {SECONDS:g} s 1280x720 H.264 25 fps + 5.1 AAC 48 kHz -> input_values "
        "[1024,128] + pixel_values [3,224,224] (DataLoader batch 4; epochs alternate ours / peer; CPU = user + system "
        "time of the main process and the workers, all threads)",
        ["workers", "ours clips/s", "ours x real time", "per core (wall, 2 cores)", "ours CPU ms/clip",
         "ours x real time per CPU-second", "ours peak RSS MB (main + workers)", "naive 2-pass peer clips/s",
         "peer x real time", "peer CPU ms/clip", "peer peak RSS MB", "ratio (clips/s)", "ratio (CPU/clip)", "load"],
        rows,
    )
    stages = stage_times(distinct, repeats=1 if quick else 3)
    stage_rows = [[name, 1000 * t["wall_s"], 1000 * t["cpu_s"]] for name, t in stages.items()]
    stage_table = print_table(
        "where the time goes, ms per clip (2 DataLoader workers: torch and the decoders single-threaded; steps run "
        "one by one; median over clips)", ["step", "wall ms/clip", "CPU ms/clip"], stage_rows)
    note = f"pixel_values max|diff| ours vs peer (same frame expected): {pixel_diff:.2e}"
    print(note)
    return {"table": table + "\n" + stage_table + "\n\n" + note, "raw": raw, "stages_per_clip": stages,
            "pixel_max_abs_diff": pixel_diff, "num_clips": num_clips}


if __name__ == "__main__":
    worker_main(handle)
