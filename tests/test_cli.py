"""`hf-av` end to end through `main(argv)` on real media files, including one-line errors and exit codes."""

import json
import sys

import numpy as np
import pytest

import hf_av.cli as cli
from hf_av.cli import main
from tests.pipelines.conftest import classifier_dir, media, pretraining_dir  # noqa: F401


def run(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for command in ("convert", "predict", "embed", "retrieve", "train", "benchmark", "card", "push", "visualize"):
        assert command in text


def test_predict_json_and_text(capsys, classifier_dir, media):
    code, out, err = run(capsys, "predict", classifier_dir, media["clip"], "--top-k", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["file"] == str(media["clip"]) and len(result["predictions"]) == 2
    code, out, _ = run(capsys, "predict", classifier_dir, media["clip"], media["wav"], "--frames", "middle")
    assert code == 0 and out.count("\n") == 2 + 2 * 5


def test_embed_npy_and_safetensors(capsys, pretraining_dir, media, tmp_path):
    code, _, err = run(capsys, "embed", pretraining_dir, media["clip"], media["other"], "--modality", "audio",
                       "-o", tmp_path / "audio.npy")
    assert code == 0, err
    assert np.load(tmp_path / "audio.npy").shape == (2, 32)
    assert (tmp_path / "audio.files.txt").read_text().split() == [str(media["clip"]), str(media["other"])]
    code, _, err = run(capsys, "embed", pretraining_dir, media["clip"], "-o", tmp_path / "both.safetensors")
    assert code == 0, err
    from safetensors.numpy import load_file

    assert {k: v.shape for k, v in load_file(tmp_path / "both.safetensors").items()} == {
        "audio_embeds": (1, 32), "visual_embeds": (1, 32)}


def test_retrieve_folder_of_clips(capsys, pretraining_dir, media, tmp_path):
    import shutil

    folder = tmp_path / "clips"
    folder.mkdir()
    for key in ("clip", "other", "silent"):
        shutil.copy(media[key], folder)
    code, out, err = run(capsys, "retrieve", pretraining_dir, media["clip"], folder, "--top-k", "2", "--json")
    assert code == 0, err
    ranking = json.loads(out)["ranking"]
    assert len(ranking) == 2 and ranking[0]["score"] >= ranking[1]["score"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{model}", "{missing}"], "no such media file"),
        (["predict", "{media}/nowhere", "{clip}"], "no such model folder"),
        (["predict", "{model}", "{corrupt}"], "corrupt.mp4"),
        (["predict", "{pre}", "{clip}"], "no classification or event head"),
        (["embed", "{pre}", "{clip}", "-o", "{media}/x.txt"], "must end in .npy"),
        (["convert", "--model", "cav-mae", "--original-model", "ut_fac", "--checkpoint", "{clip}", "--output-dir",
          "{media}/v"], "not a cav-mae checkpoint kind"),
        (["convert", "--model", "cav-mae", "--checkpoint", "{clip}", "--output-dir", "{media}/v"], "clip.mp4"),
        (["visualize", "reconstruction", "{model}", "{clip}", "-o", "{media}/r.png"], "no MAE decoder"),
    ],
)
def test_user_errors_are_one_line(capsys, classifier_dir, pretraining_dir, media, argv, message):
    values = {"model": classifier_dir, "pre": pretraining_dir, "clip": media["clip"], "corrupt": media["corrupt"],
              "missing": media["clip"].parent / "missing.mp4", "media": media["clip"].parent}
    code, _, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hf-av ") and message in lines[0], err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(classifier_dir, media):
    with pytest.raises(Exception, match="no such"):
        main(["--debug", "predict", str(classifier_dir), str(media["clip"].parent / "missing.mp4")])


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict"])
    assert exit_.value.code == 2


def test_train_and_benchmark_delegate(capsys, monkeypatch):
    import hf_av.training

    seen = []
    monkeypatch.setattr(hf_av.training, "cli_main", lambda argv: seen.append(argv) or 0)
    assert main(["train", "--task", "x", "--max-steps", "1"]) == 0
    assert seen == [["--task", "x", "--max-steps", "1"]]
    monkeypatch.setattr(cli, "_find_benchmark_runner", lambda: None)
    code, _, err = run(capsys, "benchmark", "--quick")
    assert code == 1 and "benchmarks/run.py not found" in err


def test_benchmark_runs_the_runner(capsys, monkeypatch, tmp_path):
    runner = tmp_path / "run.py"
    runner.write_text("import sys\nprint('ran', sys.argv[1:])\nsys.exit(3)\n")
    monkeypatch.setattr(cli, "_find_benchmark_runner", lambda: runner)
    code, out, _ = run(capsys, "benchmark", "--quick")
    assert code == 3 and "ran ['--quick']" in out


def test_card_refreshes_readme(capsys, pretraining_dir):
    code, out, err = run(capsys, "card", pretraining_dir, "--source", "my_checkpoint.pth")
    assert code == 0, err
    from huggingface_hub import ModelCard

    card = ModelCard.load(pretraining_dir / "README.md")
    assert card.data.pipeline_tag == "feature-extraction" and "my_checkpoint.pth" in card.text


def test_convert_offers_exactly_the_families_with_a_converter(capsys):
    from hf_av.families import FAMILIES, families_with_converter

    convert = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "convert")[1]
    model_choices = next(a.choices for a in convert._actions if a.dest == "model")
    assert sorted(model_choices) == sorted(families_with_converter())
    for model_type in model_choices:  # every converter offered exists
        assert callable(FAMILIES[model_type].converter.load())
    # a family without a row is a usage error naming the choices, not a crash at conversion time
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "--model", "no-such-family", "--checkpoint", "x", "--output-dir", "y"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_list_shows_every_family_row(capsys):
    from hf_av.families import FAMILIES

    code, out, err = run(capsys, "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    listed = listed if isinstance(listed, list) else [listed]
    assert [entry["model_type"] for entry in listed] == list(FAMILIES)
    cav_mae = listed[0]
    assert cav_mae["models"]["AutoModelForPreTraining"] == "CavMaeForPreTraining"
    assert cav_mae["converter"]["original_kinds"] == ["pretrain", "finetune"]
    assert cav_mae["tasks"] == {"pretraining": "CavMaeForPreTraining",
                                "classification": "CavMaeForAudioVisualClassification"}
    code, out, _ = run(capsys, "list")
    assert code == 0 and "hf-av convert --model cav-mae" in out and "classification -> " in out
