"""Pictures: numbers behind them, and PNGs written from real clips by the CLI."""

import numpy as np
import pytest
import torch

from hf_av import CavMaeForPreTraining, CavMaeModel, CavMaeProcessor
from hf_av.cli import main
from hf_av.visualization import mae_reconstruction, plot_event_timeline, sound_source_maps, unpatchify
from modeling.cav_mae.modeling_cav_mae import patchify
from tests.pipelines.conftest import classifier_dir, media, pretraining_dir  # noqa: F401

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_unpatchify_inverts_patchify():
    images = torch.randn(2, 3, 32, 48)
    assert torch.equal(unpatchify(patchify(images, 16), 3, 2, 3, 16), images)


def test_sound_source_maps_are_patch_audio_cosines(pretraining_dir, media):
    model = CavMaeModel.from_pretrained(pretraining_dir).eval()
    inputs = CavMaeProcessor.from_pretrained(pretraining_dir)(videos=str(media["clip"]), frame_index="all",
                                                               return_tensors="pt")
    maps = sound_source_maps(model, inputs["input_values"], inputs["pixel_values"])
    assert maps.shape == (10, 64, 64) and maps.abs().max() <= 1.0
    with torch.no_grad():
        out = model(**inputs)
    tokens = torch.nn.functional.normalize(out.visual_last_hidden_state[0, 3], dim=-1)  # frame 3, [16, D]
    cosine = (tokens @ out.audio_embeds[0]).reshape(4, 4)
    # the centre of each 16x16 cell of the upsampled map is the cell's own value (bilinear, align_corners=False)
    centre = maps[3, 8::16, 8::16]
    assert torch.allclose(centre, cosine, atol=0.25 * cosine.abs().max())


def test_reconstruction_without_mask_is_the_input(pretraining_dir, media):
    model = CavMaeForPreTraining.from_pretrained(pretraining_dir).eval()
    inputs = CavMaeProcessor.from_pretrained(pretraining_dir)(videos=str(media["clip"]), return_tensors="pt")
    full = mae_reconstruction(model, inputs["input_values"], inputs["pixel_values"], 0.0, 0.0)
    np.testing.assert_allclose(full["spectrogram_reconstruction"], inputs["input_values"][0].T.numpy(), atol=1e-6)
    masked = mae_reconstruction(model, inputs["input_values"], inputs["pixel_values"], seed=1)
    assert masked["audio_mask"].mean() == pytest.approx(0.75) and masked["visual_mask"].mean() == pytest.approx(0.75)
    assert np.isnan(masked["spectrogram_masked"]).mean() == pytest.approx(0.75)
    kept = ~np.isnan(masked["spectrogram_masked"])
    np.testing.assert_allclose(masked["spectrogram_reconstruction"][kept], masked["spectrogram"][kept])
    assert 0.0 <= masked["frame_reconstruction"].min() and masked["frame_reconstruction"].max() <= 1.0


def test_cli_writes_pngs(pretraining_dir, media, tmp_path, capsys):
    import json

    timeline = tmp_path / "timeline.json"
    timeline.write_text(json.dumps({"prediction": ["background", "dog", "dog", "car"],
                                    "ground truth": ["background", "dog", "car", "car"]}))
    jobs = [
        ["visualize", "localization", pretraining_dir, media["clip"], "-o", tmp_path / "loc.png"],
        ["visualize", "reconstruction", pretraining_dir, media["clip"], "-o", tmp_path / "rec.png"],
        ["visualize", "timeline", timeline, "-o", tmp_path / "timeline.png"],
    ]
    for argv in jobs:
        assert main(["-q", *map(str, argv)]) == 0, capsys.readouterr().err
    for name in ("loc.png", "rec.png", "timeline.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_timeline_from_pipeline_output(tmp_path):
    segments = [{"segment": t, "label": label} for t, label in enumerate(["Dog", "Dog", "background"])]
    from hf_av.visualization import load_timeline_tracks

    path = tmp_path / "pred.json"
    path.write_text(__import__("json").dumps({"file": "a.mp4", "events": {"segments": segments}}))
    tracks = load_timeline_tracks(path)
    assert tracks == {"a.mp4": ["Dog", "Dog", "background"]}
    out = plot_event_timeline(tracks, tmp_path / "t.png", segment_duration=1.0)
    assert out.read_bytes().startswith(PNG_MAGIC)
