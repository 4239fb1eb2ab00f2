"""Remote code: a saved folder loads with trust_remote_code=True in a Python where hf_av is NOT importable."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

import hf_av
from hf_av.hub import RemoteCodeError, export_remote_code, flat_module_name, push_to_hub, save_pretrained_with_remote_code
from tests.pipelines._helpers import tiny_cav_mae_config

CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    # Hide hf_av and modeling: the project is pip-installed editable, so drop its finder and every path holding it.
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f) + getattr(f, "__module__", "")]
    sys.path[:] = [p for p in sys.path if p and not any(os.path.isdir(os.path.join(p, n)) for n in ("hf_av", "modeling"))]
    sys.path_importer_cache.clear()
    hidden = [importlib.util.find_spec(n) is None for n in ("hf_av", "modeling")]
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining
    folder = sys.argv[1]
    ref = torch.load(os.path.join(folder, "..", "reference.pt"), weights_only=True)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    classifier = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    encoder = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        logits = classifier(input_values=ref["input_values"], pixel_values=ref["pixel_values"]).logits
        embeds = encoder(input_values=ref["input_values"]).audio_embeds
    # a Hub user can re-save the remote-code model and load it again
    resaved = os.path.join(folder, "..", "resaved")
    classifier.save_pretrained(resaved)
    again = AutoModelForAudioClassification.from_pretrained(resaved, trust_remote_code=True).eval()
    with torch.no_grad():
        logits_again = again(input_values=ref["input_values"], pixel_values=ref["pixel_values"]).logits
    print(json.dumps({
        "hidden": hidden,
        "loaded_hf_av": sorted(m for m in sys.modules if m.split(".")[0] in ("hf_av", "modeling")),
        "config_module": type(config).__module__,
        "model_class": type(classifier).__name__,
        "logits_close": bool(torch.allclose(logits, ref["logits"], atol=1e-6)),
        "embeds_close": bool(torch.allclose(embeds, ref["audio_embeds"], atol=1e-6)),
        "resaved_close": bool(torch.allclose(logits_again, ref["logits"], atol=1e-6)),
    }))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    torch.manual_seed(0)
    model = hf_av.CavMaeForAudioVisualClassification(tiny_cav_mae_config()).eval()
    folder = save_pretrained_with_remote_code(model, root / "model")
    inputs = {"input_values": torch.randn(2, 64, 128), "pixel_values": torch.randn(2, 3, 64, 64)}
    with torch.no_grad():
        reference = {
            **inputs,
            "logits": model(**inputs).logits,
            "audio_embeds": model.cav_mae(input_values=inputs["input_values"]).audio_embeds,
        }
    torch.save(reference, root / "reference.pt")
    return folder, reference


def test_exported_files_are_flat_and_mapped(exported):
    folder, _ = exported
    files = sorted(p.name for p in folder.glob("*.py"))
    assert files == ["common_attention.py", "common_configuration.py", "common_embeddings.py", "common_layers.py",
                     "configuration_cav_mae.py",
                     "modeling_cav_mae.py"]
    local = {p.stem for p in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative imports point at files of this folder only
                    assert node.level == 1 and node.module in local, (path.name, node.module)
                else:
                    assert node.module.split(".")[0] not in ("hf_av", "modeling"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in ("hf_av", "modeling") for a in node.names)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_cav_mae.CavMaeConfig"
    assert auto_map["AutoModel"] == "modeling_cav_mae.CavMaeModel"
    assert auto_map["AutoModelForAudioClassification"] == "modeling_cav_mae.CavMaeForAudioVisualClassification"
    assert auto_map["AutoModelForPreTraining"] == "modeling_cav_mae.CavMaeForPreTraining"


def test_loads_with_trust_remote_code_without_hf_av(exported, tmp_path):
    folder, _ = exported
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run([sys.executable, "-I", "-c", CHILD, str(folder)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["hidden"] == [True, True]
    assert report["loaded_hf_av"] == []
    assert report["config_module"].startswith("transformers_modules.")
    assert report["model_class"] == "CavMaeForAudioVisualClassification"
    assert report["logits_close"] and report["embeds_close"] and report["resaved_close"]


def test_local_classes_win_when_hf_av_is_imported(exported):
    folder, reference = exported
    config = AutoConfig.from_pretrained(folder)  # no trust_remote_code needed: hf_av registered the type
    assert type(config) is hf_av.CavMaeConfig
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model) is hf_av.CavMaeModel


def test_flat_names_and_refusals(tmp_path):
    assert flat_module_name("modeling.cav_mae.modeling_cav_mae") == "modeling_cav_mae"
    assert flat_module_name("modeling.common.layers") == "common_layers"
    assert flat_module_name("modeling.common") == "common"
    with pytest.raises(RemoteCodeError, match="config.json"):
        export_remote_code(tmp_path)


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records the calls and copies the uploaded folder (no network)."""

    def __init__(self, target):
        self.target, self.calls = target, []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        import shutil

        self.calls.append(("upload_folder", kwargs))
        shutil.copytree(kwargs["folder_path"], self.target)
        return "commit"


def test_push_to_hub_uploads_weights_and_remote_code(tmp_path):
    torch.manual_seed(0)
    model = hf_av.CavMaeModel(tiny_cav_mae_config())
    api = RecordingApi(tmp_path / "hub")
    assert push_to_hub(model, "someone/tiny-cav-mae", processor=hf_av.CavMaeProcessor(), api=api) == "commit"
    (name, create), (_, upload) = api.calls
    assert name == "create_repo" and create["repo_id"] == "someone/tiny-cav-mae" and create["exist_ok"]
    assert upload["repo_id"] == "someone/tiny-cav-mae" and upload["repo_type"] == "model"
    uploaded = {p.name for p in (tmp_path / "hub").iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "modeling_cav_mae.py"} <= uploaded
    assert "auto_map" in json.loads((tmp_path / "hub" / "config.json").read_text())


# --- processors as remote code ------------------------------------------------------------------------------------

PROCESSOR_CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f) + getattr(f, "__module__", "")]
    sys.path[:] = [p for p in sys.path if p and not any(os.path.isdir(os.path.join(p, n)) for n in ("hf_av", "modeling"))]
    sys.path_importer_cache.clear()
    hidden = [importlib.util.find_spec(n) is None for n in ("hf_av", "modeling")]
    import torch
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoModelForAudioClassification, AutoProcessor
    root, clip = sys.argv[1], sys.argv[2]
    results, classes = {}, {}
    model_folder = os.path.join(root, "model")
    processor = AutoProcessor.from_pretrained(model_folder, trust_remote_code=True)
    inputs = processor(videos=clip, return_tensors="pt")
    model = AutoModelForAudioClassification.from_pretrained(model_folder, trust_remote_code=True).eval()
    with torch.no_grad():
        results["cav-mae/logits"] = model(**inputs).logits
    results.update({f"cav-mae/{k}": v for k, v in inputs.items()})
    classes["cav-mae"] = [type(processor).__module__, type(processor).__name__,
                          type(AutoFeatureExtractor.from_pretrained(model_folder, trust_remote_code=True)).__name__,
                          type(AutoImageProcessor.from_pretrained(model_folder, trust_remote_code=True)).__name__]
    for family in ("lavish", "dg-sct", "vatt"):
        processor = AutoProcessor.from_pretrained(os.path.join(root, family), trust_remote_code=True)
        classes[family] = [type(processor).__module__, type(processor).__name__]
        results.update({f"{family}/{k}": v for k, v in processor(videos=clip, return_tensors="pt").items()})
    # a Hub user can re-save the remote-code processor and load it again
    resaved = os.path.join(root, "resaved")
    AutoProcessor.from_pretrained(model_folder, trust_remote_code=True).save_pretrained(resaved)
    again = AutoProcessor.from_pretrained(resaved, trust_remote_code=True)(videos=clip, return_tensors="pt")
    results.update({f"resaved/{k}": v for k, v in again.items()})
    torch.save(results, os.path.join(root, "child_outputs.pt"))
    print(json.dumps({
        "hidden": hidden,
        "loaded_hf_av": sorted(m for m in sys.modules if m.split(".")[0] in ("hf_av", "modeling")),
        "classes": classes,
    }))
    """
)


@pytest.fixture(scope="module")
def exported_processors(tmp_path_factory):
    """A tiny CAV-MAE classifier with a processor sized for it (model + processor remote code), the other families'
    default processors exported alone, a real H.264 + AAC clip, and what hf_av itself makes of that clip."""
    from hf_av.hub.remote_code import export_processor_remote_code
    from tests.pipelines._helpers import save_tiny_cav_mae, write_clip

    root = tmp_path_factory.mktemp("remote-processors")
    clip = write_clip(root / "clip.mp4", seconds=2.0)
    folder = save_tiny_cav_mae(root / "model")
    export_remote_code(folder)
    processor = hf_av.CavMaeProcessor.from_pretrained(folder)
    model = hf_av.CavMaeForAudioVisualClassification.from_pretrained(folder).eval()
    inputs = processor(videos=str(clip), return_tensors="pt")
    with torch.no_grad():
        expected = {"cav-mae/logits": model(**inputs).logits}
    expected.update({f"cav-mae/{k}": v for k, v in inputs.items()})
    expected.update({f"resaved/{k}": v for k, v in inputs.items()})
    for family, processor_class in (("lavish", hf_av.LavishProcessor), ("dg-sct", hf_av.DgSctProcessor),
                                    ("vatt", hf_av.VattProcessor)):
        processor_class().save_pretrained(root / family)
        export_processor_remote_code(root / family)
        outputs = processor_class()(videos=str(clip), return_tensors="pt")
        expected.update({f"{family}/{k}": v for k, v in outputs.items()})
    return root, clip, expected


def test_exported_processor_files_are_flat_and_mapped(exported_processors):
    root, _, _ = exported_processors
    folder = root / "model"
    local = {p.stem for p in folder.glob("*.py")}
    assert {"processing_cav_mae", "processing_base", "features_kaldi", "media", "media_backends_pyav"} <= local
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module in local, (path.name, node.module)
            elif isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] not in ("hf_av", "modeling"), (path.name, node.module)
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_cav_mae.CavMaeProcessor"}
    assert processor_config["feature_extractor"]["auto_map"] == {
        "AutoFeatureExtractor": "processing_cav_mae.CavMaeFeatureExtractor"}
    assert processor_config["image_processor"]["auto_map"] == {
        "AutoImageProcessor": "processing_cav_mae.CavMaeImageProcessor"}
    vatt = json.loads((root / "vatt" / "processor_config.json").read_text())
    assert vatt["video_processor"]["auto_map"] == {"AutoVideoProcessor": "processing_vatt.VattVideoProcessor"}
    assert json.loads((root / "vatt" / "tokenizer_config.json").read_text())["auto_map"] == {
        "AutoTokenizer": ["processing_vatt.VattTokenizer", None]}


def test_auto_processor_with_trust_remote_code_without_hf_av(exported_processors, tmp_path):
    """File -> AutoProcessor(trust_remote_code=True) -> model, where hf_av cannot be imported: same tensors and
    logits as hf_av itself (bit-identical preprocessing; logits within 1e-6)."""
    root, clip, expected = exported_processors
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run([sys.executable, "-I", "-c", PROCESSOR_CHILD, str(root), str(clip)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["hidden"] == [True, True]
    assert report["loaded_hf_av"] == []
    assert report["classes"]["cav-mae"][1:] == ["CavMaeProcessor", "CavMaeFeatureExtractor", "CavMaeImageProcessor"]
    for family, (module, *_) in report["classes"].items():
        assert module.startswith("transformers_modules."), (family, module)
    outputs = torch.load(root / "child_outputs.pt", weights_only=True)
    assert sorted(outputs) == sorted(expected)
    for key, value in expected.items():
        if key.endswith("logits"):
            assert (outputs[key] - value).abs().max() <= 1e-6, key
        else:
            assert torch.equal(outputs[key], value), key
