"""Model card of a converted fixture checkpoint: valid YAML metadata that huggingface_hub parses, a usage snippet
that runs, provenance and licence."""

import re
import shutil

import yaml
from huggingface_hub import ModelCard

from hf_av.cli import main
from hf_av.hub.model_card import ModelCardContent, ReportedResult, render_model_card


def test_converted_fixture_card_parses_and_its_snippet_runs(fixtures_dir, media, tmp_path, capsys):
    output = tmp_path / "converted"
    code = main(["-q", "convert", "--model", "cav-mae", "--checkpoint",
                 str(fixtures_dir / "cav-mae" / "cavmae_finetune_original.pth"), "--output-dir", str(output)])
    assert code == 0, capsys.readouterr().err
    text = (output / "README.md").read_text()
    front_matter = yaml.safe_load(text.split("---")[1])
    assert front_matter["license"] == "bsd-2-clause"
    card = ModelCard.load(output / "README.md")
    data = card.data
    assert data.library_name and data.pipeline_tag == "audio-classification"
    assert "cav-mae" in data.tags and "audio-visual" in data.tags
    assert "cavmae_finetune_original.pth" in card.text and "BSD 2-Clause" in card.text  # provenance, licence
    # the usage snippet runs against the converted folder and a real clip
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    shutil.copy(media["clip"], tmp_path / "clip.mp4")
    snippet = snippet.replace("path/to/this/folder", str(output)).replace('"clip.mp4"', repr(str(tmp_path / "clip.mp4")))
    namespace = {}
    exec(compile(snippet, "model-card-snippet", "exec"), namespace)
    assert namespace["logits"].shape == (1, 5)


def test_model_index_with_paper_and_measured_results():
    content = ModelCardContent(
        model_name="cav-mae-tiny", summary="test", license="bsd-2-clause", pipeline_tag="audio-classification",
        tags=["cav-mae"], datasets=["audioset"],
        results=[
            ReportedResult("audio-classification", "AudioSet", "audioset", "map", 0.512, metric_name="mAP (paper)",
                           source_url="https://github.com/YuanGongND/cav-mae"),
            ReportedResult("audio-classification", "AudioSet", "audioset", "map", 0.509,
                           metric_name="mAP (hf_av, measured)", source_name="hf_av evaluation",
                           source_url="https://example.org/hf_av/eval-log"),
        ],
    )
    card = render_model_card(content)
    reparsed = ModelCard(str(card))
    # huggingface_hub groups results of the same task + dataset into one model-index entry (one `source` per entry),
    # so paper and measured numbers are told apart by metric name
    results = reparsed.data.eval_results
    assert [(r.metric_name, r.metric_value) for r in results] == [("mAP (paper)", 0.512), ("mAP (hf_av, measured)", 0.509)]
    assert yaml.safe_load(str(card).split("---")[1])["model-index"][0]["name"] == "cav-mae-tiny"
