"""Remote code: make a saved hf_av folder loadable with `trust_remote_code=True` where hf_av is not installed.

Transformers' own mechanism (`register_for_auto_class` + `save_pretrained`) copies the file that defines a class and
the files it imports with single-dot relative imports (`from .x import y`). The `modeling` package imports its
shared blocks across packages (`from ..common.layers import TransformerBlock`), which that copier cannot follow, so
`export_remote_code` writes a FLAT, self-contained copy instead:

* every module of the `modeling` package the config and model classes need (found by following their imports),
  one file each in the saved folder (`modeling.cav_mae.modeling_cav_mae` -> `modeling_cav_mae.py`,
  `modeling.common.layers` -> `common_layers.py`), with every import of the package rewritten to a same-folder
  relative import (`from .common_layers import TransformerBlock`);
* `auto_map` in `config.json`: `AutoConfig` and every Transformers Auto class the family is registered with
  (`AutoModel`, `AutoModelForPreTraining`, `AutoModelForAudioClassification`, ...), pointing at those files.

Loaded that way, the classes carry `register_for_auto_class` themselves (Transformers sets it when it loads remote
code), so a folder re-saved by a Hub user keeps working. With hf_av imported, the locally registered classes win
(Transformers prefers explicit local code), so one folder serves both audiences.

The family processor is exported the same way (`export_processor_remote_code`, called by `export_remote_code` when
the folder holds a `processor_config.json`): the processor's module and everything of hf_av it imports (its feature
extractor / image or video processor, `hf_av.features`, `hf_av.media` for decoding files), flattened with every part
after `hf_av.` joined by `_` (`hf_av.processing.cav_mae` -> `processing_cav_mae.py`, `hf_av.media.backends.pyav` ->
`media_backends_pyav.py`), and `auto_map` entries for `AutoProcessor` and each sub-processor's Auto class, so
`AutoProcessor.from_pretrained(folder, trust_remote_code=True)(videos=path)` works without hf_av.

`save_pretrained_with_remote_code` and `push_to_hub` wire this into saving and uploading.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

__all__ = [
    "REMOTE_CODE_AUTO_CLASSES",
    "RemoteCodeError",
    "export_processor_remote_code",
    "export_remote_code",
    "flat_module_name",
    "push_to_hub",
    "save_pretrained_with_remote_code",
]

MODELING_ROOT = "modeling"
PACKAGE_ROOT = "hf_av"
# What code under each exported root must not import: the networks never depend on hf_av, and the processors
# never touch the networks (ARCHITECTURE.md), so each export stays self-contained.
FORBIDDEN_ROOTS = {MODELING_ROOT: (PACKAGE_ROOT,), PACKAGE_ROOT: (MODELING_ROOT,)}

# The Auto class that loads each kind of processor part, by the attribute name a processor stores it under.
SUB_PROCESSOR_AUTO_CLASSES = {
    "feature_extractor": "AutoFeatureExtractor",
    "image_processor": "AutoImageProcessor",
    "video_processor": "AutoVideoProcessor",
    "tokenizer": "AutoTokenizer",
}

# Transformers Auto classes an exported folder is mapped for (when the family is registered with them).
REMOTE_CODE_AUTO_CLASSES = (
    "AutoModel",
    "AutoModelForPreTraining",
    "AutoModelForAudioClassification",
    "AutoModelForVideoClassification",
    "AutoModelForImageClassification",
)


class RemoteCodeError(ValueError):
    """The modeling code cannot be exported as self-contained remote code (the message says why)."""


def flat_module_name(module_name: str, root: str = MODELING_ROOT) -> str:
    """Name of the flat file (without `.py`) for a module of `root`: the last part for family modules
    (`modeling.cav_mae.modeling_cav_mae` -> `modeling_cav_mae`), the parts joined with `_` for shared packages
    (`modeling.common.layers` -> `common_layers`, the package `modeling.common` -> `common`) and for every module
    of `hf_av` (`hf_av.processing.cav_mae` -> `processing_cav_mae`, `hf_av.media` -> `media`)."""
    parts = module_name.split(".")
    if parts[0] != root or len(parts) < 2:
        raise RemoteCodeError(f"{module_name} is not a module of the {root!r} package")
    parts = parts[1:]
    if root != MODELING_ROOT or parts[0] == "common" or len(parts) == 1:
        return "_".join(parts)
    return parts[-1]


def _module_file(module_name: str) -> tuple[Path, bool]:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise RemoteCodeError(f"cannot find the source file of {module_name}")
    path = Path(spec.origin)
    return path, path.name == "__init__.py"


def _resolve(module_name: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Absolute module name an `ImportFrom` refers to."""
    if node.level == 0:
        return node.module or ""
    package_parts = module_name.split(".") if is_package else module_name.split(".")[:-1]
    if node.level - 1 > len(package_parts):
        raise RemoteCodeError(f"{module_name}: relative import beyond the top-level package")
    base = package_parts[: len(package_parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _collect(entry_modules: list[str], root: str) -> dict[str, tuple[str, list[tuple[ast.ImportFrom, str | list]]]]:
    """Follow imports from `entry_modules` within `root`: module -> (source, [(import node, target(s))])."""
    collected: dict = {}
    pending = list(entry_modules)
    while pending:
        module_name = pending.pop()
        if module_name in collected:
            continue
        path, is_package = _module_file(module_name)
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        rewrites = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    if top == root or top in FORBIDDEN_ROOTS.get(root, ()):
                        raise RemoteCodeError(
                            f"{module_name} line {node.lineno}: `import {alias.name}` cannot be exported; "
                            "use `from ... import ...`"
                        )
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(module_name, is_package, node)
            top = target.split(".")[0]
            if top in FORBIDDEN_ROOTS.get(root, ()):
                raise RemoteCodeError(
                    f"{module_name} line {node.lineno} imports {target}: code of {root!r} must not depend on {top!r}"
                )
            if top != root:
                continue
            if node.module is None or target == root:
                # `from . import submodule` / `from .. import x`: each name must be a submodule
                submodules = [f"{target}.{alias.name}" for alias in node.names]
                if not all(_is_module(name) for name in submodules):
                    raise RemoteCodeError(f"{module_name} line {node.lineno}: unsupported import of package names")
                pending.extend(submodules)
                rewrites.append((node, submodules))
            else:
                pending.append(target)
                rewrites.append((node, target))
        collected[module_name] = (source, rewrites)
    return collected


def _rewrite(source: str, rewrites: list, root: str) -> str:
    lines = source.splitlines(keepends=True)
    # offsets of line starts, to splice by (line, column)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits = []
    for node, target in rewrites:
        begin = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        if isinstance(target, list):
            parts = [
                f"from . import {flat_module_name(t, root)}"
                + (f" as {alias.asname or alias.name}" if flat_module_name(t, root) != (alias.asname or alias.name) else "")
                for t, alias in zip(target, node.names)
            ]
            indent = " " * node.col_offset
            text = f"\n{indent}".join(parts)
        else:
            names = ", ".join(alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in node.names)
            text = f"from .{flat_module_name(target, root)} import {names}"
        edits.append((begin, end, text))
    for begin, end, text in sorted(edits, reverse=True):
        source = source[:begin] + text + source[end:]
    return source


def _registered_auto_classes(config_class) -> dict[str, type]:
    import transformers

    mapping = {}
    for auto_name in REMOTE_CODE_AUTO_CLASSES:
        auto_class = getattr(transformers, auto_name, None)
        if auto_class is None:
            continue
        model_class = auto_class._model_mapping._extra_content.get(config_class)
        if model_class is not None:
            mapping[auto_name] = model_class
    return mapping


def export_remote_code(
    save_directory: str | os.PathLike,
    config_class=None,
    model_classes: dict[str, type] | None = None,
    root: str = MODELING_ROOT,
) -> dict[str, str]:
    """Write the flat remote-code files of a model family into `save_directory` and set `auto_map` in its
    `config.json` (which must exist, e.g. written by `save_pretrained`). Returns the `auto_map`.

    Args:
        save_directory: a folder written by `save_pretrained`.
        config_class: the config class (default: resolved from `config.json`'s `model_type` via `AutoConfig`).
        model_classes: `{auto class name: model class}` (default: every Auto class of `REMOTE_CODE_AUTO_CLASSES`
            the family is registered with, plus `AutoModel` for the saved architecture when nothing is registered).
    """
    from transformers import AutoConfig

    save_directory = Path(save_directory)
    config_file = save_directory / "config.json"
    if not config_file.is_file():
        raise RemoteCodeError(f"{save_directory}: no config.json (save the model first)")
    config_dict = json.loads(config_file.read_text(encoding="utf-8"))
    if config_class is None:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        model_type = config_dict.get("model_type")
        try:
            config_class = CONFIG_MAPPING[model_type]
        except KeyError as error:
            raise RemoteCodeError(f"{save_directory}: model_type {model_type!r} is not registered (import hf_av)") from error
    if model_classes is None:
        model_classes = _registered_auto_classes(config_class)
    if not model_classes:
        raise RemoteCodeError(f"no model classes registered for {config_class.__name__}")
    entry_points = {"AutoConfig": config_class, **model_classes}
    for name, cls in entry_points.items():
        if cls.__module__.split(".")[0] != root:
            raise RemoteCodeError(f"{name}: {cls.__module__}.{cls.__name__} is not part of the {root!r} package")

    _write_flat_modules(save_directory, sorted({cls.__module__ for cls in entry_points.values()}), root)
    auto_map = {name: f"{flat_module_name(cls.__module__, root)}.{cls.__name__}" for name, cls in entry_points.items()}
    config_dict["auto_map"] = auto_map
    _write_json(config_file, config_dict)
    if (save_directory / PROCESSOR_CONFIG_NAME).is_file():
        export_processor_remote_code(save_directory)
    return auto_map


PROCESSOR_CONFIG_NAME = "processor_config.json"


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_flat_modules(save_directory: Path, entry_modules: list[str], root: str) -> list[str]:
    """Write the flat copies of `entry_modules` and every module of `root` they import; returns the file stems."""
    collected = _collect(entry_modules, root)
    written: dict[str, str] = {}
    for module_name, (source, rewrites) in collected.items():
        flat = flat_module_name(module_name, root)
        if flat in written and written[flat] != module_name:
            raise RemoteCodeError(f"{module_name} and {written[flat]} would both be written as {flat}.py")
        written[flat] = module_name
        header = f"# Remote-code copy of `{module_name}` (hf_av), imports flattened to this folder. Do not edit.\n"
        (save_directory / f"{flat}.py").write_text(header + _rewrite(source, rewrites, root), encoding="utf-8")
    return sorted(written)


def _processor_class_by_name(name: str | None):
    from .. import processing

    processor_class = getattr(processing, name, None) if name else None
    if processor_class is None:
        raise RemoteCodeError(f"processor_class {name!r} is not an hf_av processor")
    return processor_class


def export_processor_remote_code(save_directory: str | os.PathLike, processor_class=None) -> dict[str, str]:
    """Write the flat remote-code files of a family processor into `save_directory` and map them.

    The folder must hold the `processor_config.json` written by the processor's `save_pretrained`. Sets
    `auto_map` `{"AutoProcessor": ...}` there, and each part's own Auto class (`AutoFeatureExtractor`,
    `AutoImageProcessor`, `AutoVideoProcessor`, `AutoTokenizer`) beside its settings (nested in
    `processor_config.json`, or in the part's own file). Returns `{Auto class: "file.Class"}`.

    Args:
        save_directory: a folder written by a processor's `save_pretrained`.
        processor_class: the processor class (default: the hf_av class named by `processor_class` in the file).
    """
    save_directory = Path(save_directory)
    processor_file = save_directory / PROCESSOR_CONFIG_NAME
    if not processor_file.is_file():
        raise RemoteCodeError(f"{save_directory}: no {PROCESSOR_CONFIG_NAME} (save the processor first)")
    processor_dict = json.loads(processor_file.read_text(encoding="utf-8"))
    if processor_class is None:
        processor_class = _processor_class_by_name(processor_dict.get("processor_class"))
    parts = dict(getattr(processor_class, "sub_processor_classes", {}))
    for cls in (processor_class, *parts.values()):
        if cls.__module__.split(".")[0] != PACKAGE_ROOT:
            raise RemoteCodeError(f"{cls.__module__}.{cls.__name__} is not part of the {PACKAGE_ROOT!r} package")
    _write_flat_modules(save_directory, sorted({cls.__module__ for cls in (processor_class, *parts.values())}),
                        PACKAGE_ROOT)

    def reference(cls) -> str:
        return f"{flat_module_name(cls.__module__, PACKAGE_ROOT)}.{cls.__name__}"

    auto_map = {"AutoProcessor": reference(processor_class)}
    processor_dict["auto_map"] = {"AutoProcessor": auto_map["AutoProcessor"]}
    for attribute, part_class in parts.items():
        auto_name = SUB_PROCESSOR_AUTO_CLASSES.get(attribute)
        if auto_name is None:
            continue
        # AutoTokenizer reads a (slow, fast) pair; the others one class.
        entry = [reference(part_class), None] if auto_name == "AutoTokenizer" else reference(part_class)
        auto_map[auto_name] = reference(part_class)
        if isinstance(processor_dict.get(attribute), dict):
            processor_dict[attribute]["auto_map"] = {auto_name: entry}
            continue
        own_name = "tokenizer_config.json" if attribute == "tokenizer" else "preprocessor_config.json"
        own_file = save_directory / own_name
        if own_file.is_file():
            own = json.loads(own_file.read_text(encoding="utf-8"))
            own["auto_map"] = {**own.get("auto_map", {}), auto_name: entry}
            _write_json(own_file, own)
    _write_json(processor_file, processor_dict)
    return auto_map


def save_pretrained_with_remote_code(model, save_directory: str | os.PathLike, processor=None, **save_kwargs) -> Path:
    """`model.save_pretrained` (+ `processor.save_pretrained`) followed by :func:`export_remote_code`."""
    save_directory = Path(save_directory)
    model.save_pretrained(save_directory, **save_kwargs)
    if processor is not None:
        processor.save_pretrained(save_directory)
    export_remote_code(save_directory, config_class=type(model.config))
    return save_directory


def push_to_hub(
    folder_or_model,
    repo_id: str,
    processor=None,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str = "Upload hf_av model (weights, config, processor, remote code, model card)",
    revision: str | None = None,
    create_pr: bool = False,
    api=None,
):
    """Upload a model folder (or a model, saved to a temporary folder first) with remote code to the Hub.

    The folder gets the flat remote-code files and `auto_map` (see :func:`export_remote_code`) before the upload,
    so Hub users can load it with `trust_remote_code=True` without hf_av. Uses `huggingface_hub.HfApi`
    (`create_repo(exist_ok=True)` then `upload_folder`); pass `api=` to use another client. Returns the commit info.
    """
    from huggingface_hub import HfApi

    api = api if api is not None else HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging:
        if isinstance(folder_or_model, (str, os.PathLike)):
            folder = Path(folder_or_model)
            if not (folder / "config.json").is_file():
                raise RemoteCodeError(f"{folder}: not a saved model folder (no config.json)")
            if processor is not None:
                processor.save_pretrained(folder)
            export_remote_code(folder)
        else:
            folder = save_pretrained_with_remote_code(folder_or_model, staging, processor=processor)
        api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), commit_message=commit_message, revision=revision,
            create_pr=create_pr, repo_type="model",
        )
