"""Plugs every family row of `hf_av.families` into Transformers' Auto classes and the pipeline registry.

`register_all()` runs on `import hf_av` and is idempotent (``exist_ok=True`` everywhere). Nothing here is
per family: a family is registered by its row.
"""

from __future__ import annotations

from .families import FAMILIES, ModelFamily, auto_class


def register_family(family: ModelFamily) -> None:
    """Config, models and preprocessing classes of one row with the Auto classes."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoProcessor, AutoTokenizer

    # from its module: the top-level name is a placeholder that raises when torchvision is missing, yet the mapping
    # is all `AutoProcessor` needs, and our video processors do not use torchvision
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    config_class = family.config_class()
    if config_class.model_type != family.model_type:
        raise ValueError(
            f"family row {family.model_type!r} names {config_class.__name__}, whose model_type is "
            f"{config_class.model_type!r}"
        )
    AutoConfig.register(family.model_type, config_class, exist_ok=True)
    for auto_name, model_class in family.model_classes().items():
        auto_class(auto_name).register(config_class, model_class, exist_ok=True)

    preprocessing = family.preprocessing_classes()
    if "feature_extractor" in preprocessing:
        AutoFeatureExtractor.register(config_class, preprocessing["feature_extractor"], exist_ok=True)
    if "image_processor" in preprocessing:
        # our image processors run on torch tensors only (no PIL, no torchvision); listed under both backend names
        # so the Auto class finds them whichever backend it prefers, without a fallback warning
        image_processor = preprocessing["image_processor"]
        AutoImageProcessor.register(
            config_class, image_processor_classes={"torchvision": image_processor, "pil": image_processor},
            exist_ok=True,
        )
    if "video_processor" in preprocessing:
        AutoVideoProcessor.register(
            config_class, video_processor_classes={"torchvision": preprocessing["video_processor"]}, exist_ok=True
        )
    if "tokenizer" in preprocessing:
        AutoTokenizer.register(config_class, tokenizer_class=preprocessing["tokenizer"], exist_ok=True)
    if "processor" in preprocessing:
        AutoProcessor.register(config_class, preprocessing["processor"], exist_ok=True)


def _register_pipelines() -> None:
    """Custom pipelines with Transformers' pipeline registry (tasks and their Auto classes: `hf_av.pipelines`)."""
    from .pipelines import register_pipelines

    register_pipelines()


def register_all() -> None:
    for family in FAMILIES.values():
        register_family(family)
    _register_pipelines()


__all__ = ["register_all", "register_family"]
