"""The family registry (`hf_av.families`): every row resolves, and registration, training, CLI and cards read it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hf_av
from hf_av.families import FAMILIES, CardFacts, ModelFamily, auto_class, get_family, resolve
from hf_av.training.tasks import TASKS, get_task, model_class_for, processor_for_config

ROOT = Path(__file__).resolve().parents[1]
ROWS = sorted(FAMILIES)


@pytest.mark.parametrize("model_type", ROWS)
def test_every_path_of_the_row_resolves(model_type):
    family = get_family(model_type)
    config_class = family.config_class()
    assert config_class.model_type == model_type
    for auto_name, model_class in family.model_classes().items():
        assert model_class.config_class is config_class, (auto_name, model_class)
    for kind, cls in family.preprocessing_classes().items():
        assert isinstance(cls, type), kind
    if family.converter is not None:
        assert callable(family.converter.load())
        assert (ROOT / family.converter.script).is_file()
        if family.converter.find_released_checkpoint:
            assert callable(resolve(family.converter.find_released_checkpoint))
    if family.card.card_builder:
        assert callable(resolve(family.card.card_builder))
    if family.processor_for_config:
        assert callable(resolve(family.processor_for_config))


@pytest.mark.parametrize("model_type", ROWS)
def test_import_hf_av_registers_and_exports_the_row(model_type):
    from transformers import AutoConfig

    family = get_family(model_type)
    config_class = family.config_class()
    assert AutoConfig.for_model(model_type).__class__ is config_class
    for auto_name, model_class in family.model_classes().items():
        assert auto_class(auto_name)._model_mapping[config_class] is model_class
    preprocessing = family.preprocessing_classes()
    if "processor" in preprocessing:
        from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

        assert PROCESSOR_MAPPING[config_class] is preprocessing["processor"]
    if "feature_extractor" in preprocessing:
        from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING

        assert FEATURE_EXTRACTOR_MAPPING[config_class] is preprocessing["feature_extractor"]
    if "image_processor" in preprocessing:
        from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING

        assert preprocessing["image_processor"] in IMAGE_PROCESSOR_MAPPING[config_class].values()
    for name in family.public_names():
        assert getattr(hf_av, name).__name__ == name


@pytest.mark.parametrize("model_type", ROWS)
def test_task_heads_are_registered_with_the_tasks_auto_class(model_type):
    family = get_family(model_type)
    config = family.config_class()()
    assert set(family.tasks) <= set(TASKS)
    for task_name, head_name in family.tasks.items():
        task = get_task(task_name)
        head = model_class_for(task, config)
        assert head.__name__ == head_name
        assert auto_class(task.auto_class.rsplit(".", 1)[-1])._model_mapping[type(config)] is head


def test_missing_task_head_names_the_family_and_the_tasks_it_trains():
    config = get_family("cav-mae").config_class()()
    with pytest.raises(ValueError, match=r"'cav-mae' has no head for task 'event-localization'.*classification"):
        model_class_for(get_task("event-localization"), config)


def test_processor_for_a_config_built_from_scratch_follows_its_sizes():
    config = get_family("cav-mae").config_class()(audio_length=48, image_size=32, hidden_size=32,
                                                  num_attention_heads=4, intermediate_size=64)
    processor = processor_for_config(config)
    assert type(processor).__name__ == get_family("cav-mae").processor.rsplit(".", 1)[-1]
    assert processor.feature_extractor.target_length == 48
    assert processor.image_processor.crop_size["height"] == 32


def test_unknown_model_type_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model type 'nope'; hf_av knows: cav-mae"):
        get_family("nope")


def test_rows_are_read_only_and_checked():
    family = get_family("cav-mae")
    with pytest.raises(Exception):
        family.model_type = "x"
    with pytest.raises(TypeError):
        family.models["AutoModel"] = "x.Y"
    card = CardFacts("t", "a", "p", "r", "mit", "l", "c")
    with pytest.raises(ValueError, match="task heads \\['Missing'\\] are not among its model classes"):
        ModelFamily("x", "X", "m.XConfig", {"AutoModel": "m.XModel"}, card, tasks={"pretraining": "Missing"})


def test_resolve_names_what_is_wrong():
    with pytest.raises(ImportError, match="converter: cannot import module 'hf_av.conversion.nope'"):
        resolve("hf_av.conversion.nope.convert", "converter")
    with pytest.raises(ImportError, match="module 'hf_av.families' has no attribute 'Nope'"):
        resolve("hf_av.families.Nope")


def test_the_registry_module_imports_only_the_standard_library():
    """Loaded on its own (not through `hf_av/__init__`), the registry pulls in neither torch nor transformers."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('families', {str(ROOT / 'hf_av' / 'families.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['families'] = module\n"
        "spec.loader.exec_module(module)\n"
        "assert module.FAMILIES['cav-mae'].models\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'numpy', 'modeling', 'hf_av') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the hf_av modules `path` imports (module level or inside functions)."""
    package = "hf_av." + ".".join(path.relative_to(ROOT / "hf_av").with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_hub_does_not_import_conversion():
    """One direction only: converters write cards through `hf_av.hub`; `hf_av.hub` never imports a converter."""
    for path in sorted((ROOT / "hf_av" / "hub").glob("*.py")):
        offending = sorted(n for n in _imported_modules(path) if n.startswith("hf_av.conversion"))
        assert not offending, f"{path.name} imports {offending}"


def test_cards_take_the_facts_of_the_row():
    from hf_av.hub.model_card import build_family_model_card, family_model_card, render_model_card

    family = get_family("cav-mae")
    config = family.config_class()()
    generic = render_model_card(family_model_card(config, "/somewhere/weights.pth"))
    assert generic.data.license == family.card.license
    assert family.card.paper in generic.text and family.card.citation in generic.text
    assert family.card.paper_results.to_markdown() in generic.text and family.converter.script in generic.text
    built = build_family_model_card(config, "weights.pth", None, "CavMaeForPreTraining")  # the row's own builder
    assert "Usage" in built.sections and built.sections["Citation"] == generic_section(generic.text, "Citation")


def generic_section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n\n", 1)[1].split("\n\n## ", 1)[0].strip()


# A row with every kind of class, as VATT's will have (video processor and tokenizer included): registration must
# take each of them. The toy config/model are defined here and named by dotted path like any row's classes.
from transformers import PreTrainedConfig, PreTrainedModel  # noqa: E402


class ToyRegistryConfig(PreTrainedConfig):
    model_type = "hf-av-registry-toy"


class ToyRegistryModel(PreTrainedModel):
    config_class = ToyRegistryConfig


class ToyRegistryClassifier(ToyRegistryModel):
    pass


def test_register_family_takes_every_kind_of_class():
    from transformers import AutoConfig
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING
    from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING

    from hf_av.auto import AutoModelForAudioVisualClassification
    from hf_av.processing import vatt
    from hf_av.registration import register_family

    here = __name__
    row = ModelFamily(
        model_type="hf-av-registry-toy", name="Toy", config=f"{here}.ToyRegistryConfig",
        models={"AutoModel": f"{here}.ToyRegistryModel",
                "AutoModelForAudioVisualClassification": f"{here}.ToyRegistryClassifier"},
        card=CardFacts("t", "a", "p", "r", "mit", "l", "c"),
        feature_extractor="hf_av.processing.vatt.VattFeatureExtractor",
        video_processor="hf_av.processing.vatt.VattVideoProcessor",
        tokenizer="hf_av.processing.vatt.VattTokenizer",
        processor="hf_av.processing.vatt.VattProcessor",
        tasks={"classification": "ToyRegistryClassifier"},
    )
    register_family(row)
    assert type(AutoConfig.for_model("hf-av-registry-toy")) is ToyRegistryConfig
    assert AutoModelForAudioVisualClassification._model_mapping[ToyRegistryConfig] is ToyRegistryClassifier
    assert FEATURE_EXTRACTOR_MAPPING[ToyRegistryConfig] is vatt.VattFeatureExtractor
    assert VIDEO_PROCESSOR_MAPPING[ToyRegistryConfig]["torchvision"] is vatt.VattVideoProcessor
    assert vatt.VattTokenizer in (TOKENIZER_MAPPING[ToyRegistryConfig]
                                  if isinstance(TOKENIZER_MAPPING[ToyRegistryConfig], tuple)
                                  else (TOKENIZER_MAPPING[ToyRegistryConfig],))
    assert PROCESSOR_MAPPING[ToyRegistryConfig] is vatt.VattProcessor
    assert row.head_for_task("classification") is ToyRegistryClassifier
    assert "ToyRegistryClassifier" in row.public_names()


def test_training_from_scratch_accepts_only_registered_families():
    from hf_av.training import AudioVisualJobArguments

    with pytest.raises(ValueError, match="unknown model type 'no-such-family'; hf_av knows: cav-mae"):
        AudioVisualJobArguments(task="pretraining", train_manifest="m.csv", model_type="no-such-family")
    # a model folder brings its own config, so --model_type is not consulted
    AudioVisualJobArguments(task="pretraining", train_manifest="m.csv", model_type="no-such-family",
                            model_name_or_path="d")
