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
    "export_remote_code",
    "flat_module_name",
    "push_to_hub",
    "save_pretrained_with_remote_code",
]

MODELING_ROOT = "modeling"
FORBIDDEN_ROOTS = ("hf_av",)

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
    (`modeling.common.layers` -> `common_layers`, the package `modeling.common` -> `common`)."""
    parts = module_name.split(".")
    if parts[0] != root or len(parts) < 2:
        raise RemoteCodeError(f"{module_name} is not a module of the {root!r} package")
    parts = parts[1:]
    if parts[0] == "common" or len(parts) == 1:
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
                    if top == root or top in FORBIDDEN_ROOTS:
                        raise RemoteCodeError(
                            f"{module_name} line {node.lineno}: `import {alias.name}` cannot be exported; "
                            "use `from ... import ...`"
                        )
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(module_name, is_package, node)
            top = target.split(".")[0]
            if top in FORBIDDEN_ROOTS:
                raise RemoteCodeError(
                    f"{module_name} line {node.lineno} imports {target}: modeling code must not depend on hf_av"
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

    collected = _collect(sorted({cls.__module__ for cls in entry_points.values()}), root)
    written = {}
    for module_name, (source, rewrites) in collected.items():
        flat = flat_module_name(module_name, root)
        if flat in written and written[flat] != module_name:
            raise RemoteCodeError(f"{module_name} and {written[flat]} would both be written as {flat}.py")
        written[flat] = module_name
        header = f"# Remote-code copy of `{module_name}` (hf_av), imports flattened to this folder. Do not edit.\n"
        (save_directory / f"{flat}.py").write_text(header + _rewrite(source, rewrites, root), encoding="utf-8")

    auto_map = {name: f"{flat_module_name(cls.__module__, root)}.{cls.__name__}" for name, cls in entry_points.items()}
    config_dict["auto_map"] = auto_map
    config_file.write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n", encoding="utf-8")
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
