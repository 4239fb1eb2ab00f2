"""decode+preprocess: mp4 files -> model-ready CAV-MAE tensors (clips/s), DataLoader with 0 / 1 / 2 workers.

ours: ``CavMaeProcessor()(videos=path)`` -- one pass over the container gives audio and the selected frame
(threaded decoding inside ``hf_av.media``), then the fbank / frame pipeline.
peer (naive, same run): the anchor-style PyAV loop -- a first pass decodes every video frame (default threading,
keeps the frames CAV-MAE samples), a second pass (seek 0) decodes and resamples the audio to 16 kHz mono;
the SAME feature extractor and image processor then make the tensors, so the difference is the decode strategy.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .common import LOAD, print_table
from .media_fixtures import benchmark_clips

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


def _throughput(paths: list[str], item_fn, workers: int, batch_size: int = 4) -> tuple[float, float]:
    """(clips/s of one timed epoch after a warm-up epoch, seconds of that epoch)."""
    loader = torch.utils.data.DataLoader(
        _Clips(paths, item_fn), batch_size=batch_size, num_workers=workers,
        persistent_workers=workers > 0, shuffle=False,
    )
    for _ in loader:  # warm-up: worker start, imports, codec init
        pass
    start = time.perf_counter()
    count = 0
    for batch in loader:
        count += batch["input_values"].shape[0]
        assert batch["input_values"].shape[1:] == (1024, 128) and batch["pixel_values"].shape[1:] == (3, 224, 224)
    elapsed = time.perf_counter() - start
    del loader
    return count / elapsed, elapsed


def run(quick: bool = False) -> dict:
    distinct = benchmark_clips(4)
    num_clips = 8 if quick else 16
    paths = [distinct[i % len(distinct)] for i in range(num_clips)]

    # same tensors from both paths? (audio differs: ours keeps channel 0 like the original sox remix 1, the peer downmixes)
    a, b = ours_item(paths[0]), naive_item(paths[0])
    pixel_diff = (a["pixel_values"] - b["pixel_values"]).abs().max().item()

    rows, raw = [], {}
    for workers in (0, 1, 2):
        LOAD.note(f"decode w{workers}")
        ours_rate, ours_s = _throughput(paths, ours_item, workers)
        peer_rate, peer_s = _throughput(paths, naive_item, workers)
        raw[f"workers_{workers}"] = {"ours_clips_per_s": ours_rate, "peer_clips_per_s": peer_rate,
                                     "ours_epoch_s": ours_s, "peer_epoch_s": peer_s}
        rows.append([f"{workers} (main process)" if workers == 0 else workers, ours_rate, 1.0 / ours_rate * max(workers, 1),
                     peer_rate, ours_rate / peer_rate, ">1: " + ("yes" if ours_rate > peer_rate else "NO")])
    table = print_table(
        f"decode + preprocess, {num_clips} x 5 s 1280x720 H.264 25 fps + 5.1 AAC 48 kHz -> input_values [1024,128] + "
        "pixel_values [3,224,224] (DataLoader batch 4)",
        ["workers", "ours clips/s", "ours s/clip/worker", "naive 2-pass PyAV peer clips/s", "ratio", "target"],
        rows,
    )
    note = f"pixel_values max|diff| ours vs peer (same frame expected): {pixel_diff:.2e}"
    print(note)
    return {"table": table + "\n\n" + note, "raw": raw, "pixel_max_abs_diff": pixel_diff, "num_clips": num_clips}
