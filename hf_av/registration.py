"""One table that plugs every hf_av class into Transformers' Auto classes.

`register_all()` runs on `import hf_av` and is idempotent (``exist_ok=True`` everywhere).
"""


def _register_models() -> None:
    """Configs and models, per family."""
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForAudioClassification,
        AutoModelForPreTraining,
    )

    from modeling.cav_mae import (
        CavMaeConfig,
        CavMaeForAudioVisualClassification,
        CavMaeForPreTraining,
        CavMaeModel,
    )

    from .auto import AutoModelForAudioVisualClassification

    # CAV-MAE. The classifier is also an audio-classification head: audio-only input runs the original `audioonly`
    # mode, so Transformers' stock `audio-classification` pipeline works with it. It is not registered for
    # video classification: the stock pipeline feeds consecutive frames, not the paper's ten spread-out frames.
    AutoConfig.register(CavMaeConfig.model_type, CavMaeConfig, exist_ok=True)
    AutoModel.register(CavMaeConfig, CavMaeModel, exist_ok=True)
    AutoModelForPreTraining.register(CavMaeConfig, CavMaeForPreTraining, exist_ok=True)
    AutoModelForAudioClassification.register(CavMaeConfig, CavMaeForAudioVisualClassification, exist_ok=True)
    AutoModelForAudioVisualClassification.register(CavMaeConfig, CavMaeForAudioVisualClassification, exist_ok=True)


def _register_processors() -> None:
    """Feature extractors, image processors and processors, per family.

    Auto classes are keyed by config class, so a family is registered here once its config exists.
    LAVisH and DG-SCT have no config yet: their processors still load with
    ``LavishProcessor.from_pretrained(D)`` / ``DgSctProcessor.from_pretrained(D)`` because
    ``AudioVisualProcessor`` resolves sub-processors by concrete class, not through the Auto registry.
    """
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor

    from modeling.cav_mae import CavMaeConfig

    from .processing import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor

    AutoFeatureExtractor.register(CavMaeConfig, CavMaeFeatureExtractor, exist_ok=True)
    # Our image processors run on torch tensors only (no PIL, no torchvision). They are listed under both
    # standard backend names so the Auto class finds them whichever backend it prefers, without a fallback warning.
    AutoImageProcessor.register(
        CavMaeConfig,
        image_processor_classes={"torchvision": CavMaeImageProcessor, "pil": CavMaeImageProcessor},
        exist_ok=True,
    )
    AutoProcessor.register(CavMaeConfig, CavMaeProcessor, exist_ok=True)


def _register_pipelines() -> None:
    """Custom pipelines with Transformers' pipeline registry (tasks and their Auto classes: `hf_av.pipelines`)."""
    from .pipelines import register_pipelines

    register_pipelines()


def register_all() -> None:
    _register_models()
    _register_processors()
    _register_pipelines()
