"""Model cards of DG-SCT's AVVP / AVQA / AVS folders: valid Hub metadata with the paper's numbers (research notes,
`dg-sct.md` section 9), the conversion report, the limits, and a usage snippet that runs on a tiny saved folder
and a real clip."""

import re

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import ModelCard

from hf_av.hub.dg_sct_task_cards import ConversionSummary, dg_sct_task_model_card
from hf_av.hub.model_card import render_model_card
from tests.pipelines._dg_sct_task_models import SEGMENTS, save_tiny_task_model, tiny_task_config
from tests.pipelines._helpers import write_clip

PAPER = {  # the paper's numbers, as the research notes give them
    "avvp": {"segment-level audio F-score": 59.0, "segment-level visual F-score": 59.4,
             "segment-level audio-visual F-score": 52.8, "segment-level type@AV F-score": 57.1,
             "segment-level event@AV F-score": 57.0, "event-level audio F-score": 49.2,
             "event-level visual F-score": 56.1, "event-level audio-visual F-score": 46.1,
             "event-level type@AV F-score": 50.5, "event-level event@AV F-score": 49.1},
    "avqa": {"audio question accuracy": 77.4, "visual question accuracy": 81.9,
             "audio-visual question accuracy": 70.7, "average accuracy": 74.8},
    "avs": {"S4 mIoU (M_J)": 80.9, "S4 F-score (M_F)": 89.2, "MS3 mIoU (M_J)": 53.5, "MS3 F-score (M_F)": 64.2},
}


@pytest.mark.parametrize("task", ["avvp", "avqa", "avs"])
def test_task_cards_carry_the_papers_numbers_the_conversion_and_the_limits(task):
    conversion = ConversionSummary("MGN_Net.pt", 3064, 2900, {"unused in the forward": 12})
    card = ModelCard(str(render_model_card(dg_sct_task_model_card(task, tiny_task_config(task), conversion))))
    metadata = yaml.safe_load(str(card).split("---")[1])
    results = metadata["model-index"][0]["results"]
    reported = {metric["name"]: metric["value"] for result in results for metric in result["metrics"]}
    assert reported == PAPER[task]
    assert metadata["license"] == "unknown" and metadata["library_name"] == "hf_av"
    text = card.text
    assert "3064 original keys -> 2900 keys" in text and "unused in the forward: 12 key(s)" in text
    assert "## Limits" in text and "## Citation" in text and "duan2023cross" in text
    if task == "avvp":
        assert "R(2+1)D-18" in text and "clip_feature_size=None" in text and "| Segment-level | 59.0 |" in text
    if task == "avs":
        assert "Only S4 checkpoints convert" in text
    untouched = dg_sct_task_model_card(task, tiny_task_config(task))
    assert "Conversion" not in untouched.sections
    with pytest.raises(ValueError, match="unknown DG-SCT task 'ave'"):
        dg_sct_task_model_card("ave", tiny_task_config(task))


@pytest.mark.parametrize("task", ["avvp", "avqa", "avs"])
def test_the_cards_usage_snippet_runs_on_a_saved_folder(task, tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = save_tiny_task_model(tmp_path / task, task)
        clip = write_clip(tmp_path / "clip.mp4", seconds=3.0, fps=8, size=48)
        features = tmp_path / "clip.npy"
        np.save(features, np.zeros((SEGMENTS, 6), dtype=np.float32))
        content = dg_sct_task_model_card(task, tiny_task_config(task))
        snippet = re.search(r"```python\n(.*?)```", content.sections["Usage"], re.S).group(1)
        snippet = (snippet.replace("path/to/this/folder", str(folder)).replace("clip.mp4", str(clip))
                   .replace("feats/r2plus1d_18/clip.npy", str(features)))
        monkeypatch.chdir(tmp_path)
        exec(compile(snippet, f"{task}-card-snippet", "exec"), {})
    finally:
        torch.set_num_threads(threads)
    if task == "avvp":
        assert "audio-visual:" in capsys.readouterr().out
    if task == "avs":
        assert (tmp_path / "frame0.png").exists()
