"""hf_av: audio-visual transformers (CAV-MAE, VATT, DG-SCT, LAVisH) for the Hugging Face ecosystem.

Importing this package registers every family of `hf_av.families` (config, models, feature extractor, image
processor, processor, ...) with Transformers' Auto classes and exports their classes under their own names.
"""

__version__ = "0.1.0"


def _check_modeling_package() -> None:
    """Fail clearly when another `modeling` module or package hides hf_av's (it sits earlier on `sys.path`).

    The networks live in the top-level package `modeling`, installed next to `hf_av`. A `modeling.py` or a
    `modeling/` package found first on `sys.path` (e.g. the original VATT repository's `vatt/modeling/` when `vatt/`
    is the working directory) would otherwise end `import hf_av` with "No module named 'modeling.cav_mae';
    'modeling' is not a package" or with an import from someone else's code.
    """
    import importlib.util
    import os
    import sys

    expected = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "modeling")
    loaded = sys.modules.get("modeling")
    if loaded is not None:
        origin = getattr(loaded, "__file__", None)
        locations = list(getattr(loaded, "__path__", None) or [])
        how = "is already imported from"
    else:
        spec = importlib.util.find_spec("modeling")
        if spec is None:
            raise ImportError(
                f"hf_av needs its `modeling` package (expected at {expected}) but it is not importable; "
                "reinstall hf_av (pip install -e . in a source checkout)"
            )
        origin = spec.origin
        locations = list(spec.submodule_search_locations or [])
        how = "resolves to"
    ours = os.path.isdir(expected)
    found_ours = any(os.path.realpath(p) == os.path.realpath(expected) for p in locations) if ours else bool(locations)
    if found_ours:
        return
    if locations:  # a package: its folder is the shadow, the folder above it the sys.path entry
        shadow, kind = locations[0], "a package"
        path_entry = os.path.dirname(os.path.abspath(shadow))
    else:
        shadow, kind = origin or "an unknown location", "a module, not a package"
        path_entry = os.path.dirname(os.path.abspath(shadow)) if origin else "its folder"
    raise ImportError(
        f"hf_av cannot use its `modeling` package: `import modeling` {how} {shadow} ({kind}), not hf_av's "
        f"{expected}; another project's `modeling` comes earlier on sys.path. Way out: run Python from another "
        f"working directory, or take {path_entry} off sys.path / PYTHONPATH before importing hf_av (import the "
        "other project as a package, e.g. `vatt.modeling`, instead of putting its folder on the path)."
    )


_check_modeling_package()

from .errors import CheckpointConversionError, HfAvError, MediaDecodingError  # noqa: E402
from modeling.common.configuration import InvalidConfigError  # noqa: E402
from .families import FAMILIES, get_family  # noqa: E402

# --- media (decoding) ---
from .media import (  # noqa: E402
    DecodedMedia,
    MediaDecodingWarning,
    MediaInfo,
    VideoStreamInfo,
    decode_media,
    load_audio,
    load_image,
    probe_media,
)
# --- features (signal processing) ---
from .features import kaldi_fbank, log_mel_spectrogram, resample  # noqa: E402
# --- preprocessing of the families that have no row yet (a row exports its own classes below) ---
from .processing import (  # noqa: E402
    DgSctFeatureExtractor,
    DgSctImageProcessor,
    DgSctProcessor,
    LavishFeatureExtractor,
    LavishImageProcessor,
    LavishProcessor,
    VattFeatureExtractor,
    VattProcessor,
    VattTokenizer,
    VattVideoProcessor,
)
from .registration import register_all as _register_all  # noqa: E402


def _export_family_classes() -> None:
    """Every class a family row names (config, models, preprocessing) becomes `hf_av.<ClassName>`."""
    for family in FAMILIES.values():
        classes = [family.config_class(), *family.model_classes().values(), *family.preprocessing_classes().values()]
        for cls in classes:
            globals()[cls.__name__] = cls


_export_family_classes()
_register_all()
