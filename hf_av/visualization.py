"""Pictures: CAV-MAE sound-source localisation maps, MAE reconstructions, event localization timelines.

Computation (`sound_source_maps`, `mae_reconstruction`) needs only torch; drawing (`plot_*`, `*_figure`) needs
matplotlib (`pip install "hf-av[plots]"`), imported lazily with the non-interactive Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "load_timeline_tracks",
    "mae_reconstruction",
    "mae_reconstruction_figure",
    "plot_event_timeline",
    "plot_mae_reconstruction",
    "plot_sound_source_localization",
    "require_matplotlib",
    "sound_source_localization_figure",
    "sound_source_maps",
    "unnormalize_frames",
    "unpatchify",
]

BACKGROUND_LABELS = ("background", "bg", "none", "other", "")


def require_matplotlib():
    """`matplotlib.pyplot` with the Agg backend, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError('hf_av pictures need matplotlib: pip install "hf-av[plots]" (or matplotlib>=3.7)') from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------------------------------
# tensors
# ---------------------------------------------------------------------------------------------------------------------
def unpatchify(patches: torch.Tensor, channels: int, rows: int, cols: int, patch_size: int) -> torch.Tensor:
    """Inverse of `modeling.cav_mae.patchify`: `[B, rows*cols, p*p*C]` -> `[B, C, rows*p, cols*p]`."""
    batch = patches.shape[0]
    x = patches.reshape(batch, rows, cols, patch_size, patch_size, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(batch, channels, rows * patch_size, cols * patch_size)


def unnormalize_frames(pixel_values: torch.Tensor, image_mean, image_std) -> np.ndarray:
    """`[..., 3, H, W]` normalised frames -> float `[..., H, W, 3]` in [0, 1]."""
    mean = torch.tensor(image_mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(image_std, dtype=torch.float32).view(3, 1, 1)
    frames = (pixel_values.detach().float().cpu() * std + mean).clamp(0, 1)
    return frames.movedim(-3, -1).numpy()


@torch.no_grad()
def sound_source_maps(model, input_values: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every visual patch token with the clip's audio embedding, upsampled over the frame.

    `model` is any CAV-MAE model (the encoder inside a head is used). `input_values` `[1, T_a, F]`, `pixel_values`
    `[1, 3, H, W]` or `[1, T, 3, H, W]`. Returns `[T, H, W]` similarities in [-1, 1] (T = 1 for one frame).
    """
    base = getattr(model, "base_model", model)
    audio = base.get_audio_features(input_values, return_dict=True).pooler_output  # [1, D], L2-normalised
    visual = base.get_visual_features(pixel_values, return_dict=True).last_hidden_state
    tokens = visual.reshape(-1, visual.shape[-2], visual.shape[-1])  # [T, L, D]
    similarity = torch.nn.functional.normalize(tokens.float(), dim=-1) @ torch.nn.functional.normalize(
        audio[0].float(), dim=-1
    )
    grid = int(round(similarity.shape[-1] ** 0.5))
    if grid * grid != similarity.shape[-1]:
        raise ValueError(f"visual tokens ({similarity.shape[-1]}) do not form a square patch grid")
    height, width = pixel_values.shape[-2:]
    maps = torch.nn.functional.interpolate(
        similarity.reshape(-1, 1, grid, grid), size=(height, width), mode="bilinear", align_corners=False
    )
    return maps[:, 0].cpu()


@torch.no_grad()
def mae_reconstruction(
    model,
    input_values: torch.Tensor,
    pixel_values: torch.Tensor,
    audio_mask_ratio: float | None = None,
    visual_mask_ratio: float | None = None,
    seed: int = 0,
    image_mean=(0.485, 0.456, 0.406),
    image_std=(0.229, 0.224, 0.225),
) -> dict[str, np.ndarray]:
    """Original / masked / reconstructed spectrogram and frame of a `CavMaeForPreTraining` model (first clip).

    The mask comes from seeded uniform noise (`audio_noise` / `visual_noise`). With `config.norm_pix_loss` the
    decoder predicts per-patch normalised pixels, which are un-normalised with the mean and (unbiased) variance of
    the corresponding original patch, as MAE visualisations do. Visible patches show the input.

    Returns `spectrogram`, `spectrogram_masked` (NaN where removed), `spectrogram_reconstruction` (`[F, T]`,
    normalised fbank units) and `frame`, `frame_masked`, `frame_reconstruction` (`[H, W, 3]` in [0, 1]), plus
    `audio_mask` / `visual_mask` (`[rows, cols]`, 1 = removed).
    """
    if not hasattr(model, "decoder") or not hasattr(model, "audio_targets"):
        raise ValueError(f"{type(model).__name__} has no MAE decoder; use a CAV-MAE pre-training checkpoint")
    config = model.config
    if pixel_values.dim() == 5:
        pixel_values = pixel_values[:, pixel_values.shape[1] // 2]
    input_values, pixel_values = input_values[:1], pixel_values[:1]
    generator = torch.Generator().manual_seed(seed)
    audio_noise = torch.rand(1, config.num_audio_patches, generator=generator)
    visual_noise = torch.rand(1, config.num_visual_patches, generator=generator)
    device = next(model.parameters()).device
    out = model(
        input_values=input_values.to(device), pixel_values=pixel_values.to(device), audio_noise=audio_noise,
        visual_noise=visual_noise, audio_mask_ratio=audio_mask_ratio, visual_mask_ratio=visual_mask_ratio,
        return_dict=True,
    )
    p = config.patch_size

    def compose(prediction, target, mask):
        prediction, target, mask = prediction.float().cpu(), target.float().cpu(), mask.float().cpu()
        if config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            prediction = prediction * (var + 1.0e-6) ** 0.5 + mean
        removed = mask.bool().unsqueeze(-1)
        reconstruction = torch.where(removed, prediction, target)
        masked = torch.where(removed, torch.full_like(target, float("nan")), target)
        return target, masked, reconstruction

    rows_a, cols_a = config.audio_frequency_patches, config.audio_time_patches
    audio = compose(out.audio_reconstruction, model.audio_targets(input_values.to(device)), out.audio_mask)
    spectrograms = [unpatchify(x, 1, rows_a, cols_a, p)[0, 0].numpy() for x in audio]
    grid = config.visual_grid_size
    visual = compose(out.visual_reconstruction, model.visual_targets(pixel_values.to(device)), out.visual_mask)
    frames = []
    for x in visual:
        image = unpatchify(torch.nan_to_num(x, nan=0.0), config.num_channels, grid, grid, p)[0]
        frame = unnormalize_frames(image, image_mean, image_std)
        if torch.isnan(x).any():  # removed patches: mid grey
            hole = unpatchify(torch.isnan(x).float(), config.num_channels, grid, grid, p)[0].movedim(0, -1).numpy() > 0
            frame = np.where(hole, 0.5, frame)
        frames.append(frame)
    return {
        "spectrogram": spectrograms[0], "spectrogram_masked": spectrograms[1], "spectrogram_reconstruction": spectrograms[2],
        "frame": frames[0], "frame_masked": frames[1], "frame_reconstruction": frames[2],
        "audio_mask": out.audio_mask[0].float().cpu().reshape(rows_a, cols_a).numpy(),
        "visual_mask": out.visual_mask[0].float().cpu().reshape(grid, grid).numpy(),
    }


# ---------------------------------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------------------------------
def _save(fig, output) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return output


def plot_sound_source_localization(frames: np.ndarray, maps, output, title: str | None = None, times=None) -> Path:
    """Frames (`[T, H, W, 3]` in [0, 1] or uint8) over their heat maps (`[T, H, W]`), one column per frame."""
    plt = require_matplotlib()
    frames = np.asarray(frames)
    frames = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames
    maps = np.asarray(maps, dtype=np.float32)
    if frames.ndim == 3:
        frames, maps = frames[None], maps.reshape(1, *maps.shape[-2:])
    count = frames.shape[0]
    low, high = float(np.min(maps)), float(np.max(maps))
    fig, axes = plt.subplots(2, count, figsize=(1.9 * count + 0.6, 4.2), squeeze=False)
    for t in range(count):
        axes[0, t].imshow(frames[t])
        axes[1, t].imshow(frames[t])
        image = axes[1, t].imshow(maps[t], cmap="jet", alpha=0.5, vmin=low, vmax=high)
        axes[0, t].set_title(f"{times[t]:.1f} s" if times is not None else f"frame {t}", fontsize=8)
        for ax in axes[:, t]:
            ax.set_axis_off()
    fig.colorbar(image, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01, label="cosine(patch, audio)")
    fig.suptitle(title or "Sound-source localisation (visual patch tokens vs. audio embedding)", fontsize=10)
    return _save(fig, output)


def plot_mae_reconstruction(result: dict, output, title: str | None = None) -> Path:
    """Two rows (spectrogram, frame) x three columns (original, masked, reconstruction)."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), gridspec_kw={"height_ratios": [1, 1.3]})
    spectrograms = [result["spectrogram"], result["spectrogram_masked"], result["spectrogram_reconstruction"]]
    finite = np.concatenate([s[np.isfinite(s)].ravel() for s in spectrograms])
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    cmap = plt.get_cmap("magma").with_extremes(bad="#7f7f7f")
    names = ("original", "masked", "reconstruction")
    for column, (spectrogram, name) in enumerate(zip(spectrograms, names)):
        ax = axes[0, column]
        ax.imshow(np.ma.masked_invalid(spectrogram), origin="lower", aspect="auto", cmap=cmap, vmin=low, vmax=high)
        ax.set_title(f"spectrogram: {name}", fontsize=9)
        ax.set_xlabel("frame (10 ms)", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=8)
        ax.tick_params(labelsize=7)
    for column, (key, name) in enumerate(zip(("frame", "frame_masked", "frame_reconstruction"), names)):
        axes[1, column].imshow(np.clip(result[key], 0, 1))
        axes[1, column].set_title(f"frame: {name}", fontsize=9)
        axes[1, column].set_axis_off()
    audio_ratio = float(result["audio_mask"].mean())
    visual_ratio = float(result["visual_mask"].mean())
    fig.suptitle(title or f"CAV-MAE reconstruction ({audio_ratio:.0%} audio / {visual_ratio:.0%} visual patches removed)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, output)


def load_timeline_tracks(path) -> dict[str, list]:
    """Tracks for `plot_event_timeline` from JSON: `{track: [label per segment]}`, or the output of
    `hf-av predict --json` / the event localization pipeline (`{"segments": [...]}`, one or a list of files)."""
    data = json.loads(Path(path).read_text())

    def from_prediction(item, name):
        events = item.get("events", item)
        segments = events.get("segments") if isinstance(events, dict) else None
        if segments is None:
            raise ValueError(f"{path}: expected {{track: [labels]}} or event localization output with 'segments'")
        return name, [s["label"] for s in sorted(segments, key=lambda s: s["segment"])]

    if isinstance(data, list):
        return dict(from_prediction(item, Path(item.get("file", f"clip {i}")).name) for i, item in enumerate(data))
    if isinstance(data, dict) and ("segments" in data or "events" in data):
        return dict([from_prediction(data, Path(data.get("file", "prediction")).name)])
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {str(k): list(v) for k, v in data.items()}
    raise ValueError(f"{path}: expected {{track: [labels]}} or event localization output with 'segments'")


def plot_event_timeline(
    tracks: dict[str, list],
    output,
    segment_duration: float = 1.0,
    title: str | None = None,
    background_labels=BACKGROUND_LABELS,
) -> Path:
    """One row per track (e.g. "prediction", "ground truth"), one coloured box per segment label; background
    segments (and `None`) stay light grey. Labels keep their colour across tracks."""
    plt = require_matplotlib()
    from matplotlib.patches import Patch

    if not tracks:
        raise ValueError("no tracks to draw")
    is_background = lambda label: label is None or str(label).lower() in background_labels  # noqa: E731
    labels = sorted({str(l) for values in tracks.values() for l in values if not is_background(l)})
    palette = plt.get_cmap("tab20")
    colours = {label: palette(i % 20) for i, label in enumerate(labels)}
    length = max(len(v) for v in tracks.values())
    fig, ax = plt.subplots(figsize=(max(6.0, 0.65 * length + 2.5), 0.7 * len(tracks) + 1.6))
    for row, (name, values) in enumerate(reversed(list(tracks.items()))):
        for t, label in enumerate(values):
            colour = "#e6e6e6" if is_background(label) else colours[str(label)]
            ax.broken_barh([(t * segment_duration, segment_duration)], (row - 0.38, 0.76), facecolors=colour,
                           edgecolors="white", linewidth=1.2)
            if not is_background(label) and (t == 0 or values[t - 1] != label):
                ax.text(t * segment_duration + 0.05 * segment_duration, row, str(label), va="center", fontsize=7,
                        clip_on=True)
    ax.set_yticks(range(len(tracks)))
    ax.set_yticklabels(list(reversed(list(tracks))), fontsize=8)
    ax.set_xlim(0, length * segment_duration)
    ax.set_xticks([t * segment_duration for t in range(length + 1)])
    ax.set_xlabel("time (s)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(-0.6, len(tracks) - 0.4)
    handles = [Patch(color=colours[l], label=l) for l in labels] + [Patch(color="#e6e6e6", label="background")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title or "Audio-visual event localization", fontsize=10)
    return _save(fig, output)


# ---------------------------------------------------------------------------------------------------------------------
# from files (used by `hf-av visualize`)
# ---------------------------------------------------------------------------------------------------------------------
def _load(model_dir, auto_name: str, device):
    import transformers
    from transformers import AutoProcessor

    import hf_av  # noqa: F401  (registers the classes)

    model = getattr(transformers, auto_name).from_pretrained(model_dir).eval()
    if device:
        model.to(device)
    processor = AutoProcessor.from_pretrained(model_dir)
    return model, processor


def sound_source_localization_figure(model_dir, video, output, frames="all", device=None) -> Path:
    """Decode `video` with the model's processor, compute `sound_source_maps` and draw them."""
    model, processor = _load(model_dir, "AutoModel", device)
    frame_index = None if frames == "middle" else frames
    inputs = processor(videos=str(video), return_tensors="pt", frame_index=frame_index)
    device_ = next(model.parameters()).device
    maps = sound_source_maps(model, inputs["input_values"].to(device_), inputs["pixel_values"].to(device_))
    image_processor = processor.image_processor
    shown = unnormalize_frames(inputs["pixel_values"][0], image_processor.image_mean, image_processor.image_std)
    shown = shown.reshape(-1, *shown.shape[-3:])
    return plot_sound_source_localization(shown, maps.numpy(), output, title=f"Sound-source localisation: {Path(video).name}")


def mae_reconstruction_figure(model_dir, video, output, seed=0, audio_mask_ratio=None, visual_mask_ratio=None,
                              device=None) -> Path:
    """Decode `video`, mask it with `seed`, reconstruct with a `CavMaeForPreTraining` folder and draw the result."""
    architectures = json.loads(Path(model_dir, "config.json").read_text()).get("architectures") or []
    if not any(name.endswith("ForPreTraining") for name in architectures):
        raise ValueError(f"{model_dir}: {', '.join(architectures) or 'this model'} has no MAE decoder; "
                         "reconstructions need a pre-training checkpoint")
    model, processor = _load(model_dir, "AutoModelForPreTraining", device)
    inputs = processor(videos=str(video), return_tensors="pt")
    image_processor = processor.image_processor
    result = mae_reconstruction(
        model, inputs["input_values"], inputs["pixel_values"], audio_mask_ratio=audio_mask_ratio,
        visual_mask_ratio=visual_mask_ratio, seed=seed, image_mean=image_processor.image_mean,
        image_std=image_processor.image_std,
    )
    return plot_mae_reconstruction(result, output)
