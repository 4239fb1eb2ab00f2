"""Run Transformers' own `ModelTesterMixin` on hf_av models: loader and reusable pieces.

Where the upstream code comes from: `.ci/tests` calls `.ci/fetch-transformers-tests`, which extracts the
`tests/` folder of the *installed* transformers release (its PyPI sdist) into
`.cache/transformers-tests/<version>/tests` (outside git; `HF_AV_TRANSFORMERS_TESTS` may point elsewhere).
That folder is imported as the package `transformers_upstream_tests` (our own `tests` package has the same name
as upstream's), so its relative imports work. The sdist lacks `tests/exporters/` and `tests/generation/`, which
`test_modeling_common.py` imports; when absent, `_install_shims` stands in for them (no export tests, no generation tests:
none of our models exports to ExecuTorch/ONNX here or generates).

How a family adds its tester (copy `test_cav_mae_common.py`):

1. `common = require_upstream()` at the top of `tests/transformers_common/test_<family>_common.py`; it skips the
   module (outside CI) or fails it (in CI, `CI=true`) when the upstream tests are missing.
2. A `<Family>ModelTester(SmallModelTester)`: `get_config()` returns a tiny config (<= 2 layers per stack, widths
   ~32, so all classes run in seconds); `prepare_config_and_inputs_for_common()` returns `(config, inputs)` with
   EVERY modality the models take (e.g. `input_values` and `pixel_values`); `streams(model_class)` describes each
   stream's hidden states / attentions as `StreamSpec`s (field names in the output, counts, shapes).
3. One test class per model class: `class <Family>ModelCommonTest(MultiStreamTests, common.ModelTesterMixin,
   unittest.TestCase)` with `all_model_classes = (<Class>,)`, the tester in `setUp`,
   `additional_model_inputs = ["pixel_values", ...]` (the inputs besides `main_input_name` that upstream tests
   building their own inputs must pass too), and `_prepare_for_class` adding what a class needs beyond the common
   inputs (labels / `return_loss=True` for `test_training`, fixed mask noise for pre-training -- random masking
   would make every "same output twice" test fail; size it by the batch of the inputs, some tests grow it).
   `MultiStreamTests` replaces the three upstream tests that read a single `outputs.hidden_states` /
   `outputs.attentions` by per-stream versions driven by `streams()`, and adds `test_eager_matches_sdpa_per_stream`;
   it must come before `ModelTesterMixin`.
4. Every skip or switched-off check carries its reason: `@skip_upstream("test_name", reason=...)` (covers the
   parameterized expansions too), or a comment beside an upstream flag such as `test_all_params_have_gradient =
   False` saying which parameters a class's loss does not reach and which test covers them instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import types
import unittest
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

PACKAGE = "transformers_upstream_tests"
REPO_ROOT = Path(__file__).resolve().parents[2]


class UpstreamUnavailable(RuntimeError):
    """Transformers' own tests (or a module they import) are not available here."""


def upstream_tests_dir() -> Path:
    """Where the installed transformers release's `tests/` folder is expected."""
    override = os.environ.get("HF_AV_TRANSFORMERS_TESTS")
    if override:
        return Path(override)
    version = importlib.metadata.version("transformers")
    return REPO_ROOT / ".cache" / "transformers-tests" / version / "tests"


def _install_shims(folder: Path) -> None:
    """Empty stand-ins for the two mixins `test_modeling_common.py` imports from folders the sdist omits."""
    shims = {
        "exporters.test_export": ("ExportTesterMixin", "export tests need tests/exporters (not in the sdist)"),
        "generation.test_utils": ("GenerationTesterMixin", "generation tests need tests/generation (not in the sdist)"),
    }
    for dotted, (class_name, why) in shims.items():
        subpackage, module_name = dotted.split(".")
        if (folder / subpackage / f"{module_name}.py").is_file():
            continue
        package_name = f"{PACKAGE}.{subpackage}"
        if package_name not in sys.modules:
            package = types.ModuleType(package_name)
            package.__path__ = []
            sys.modules[package_name] = package
        module = types.ModuleType(f"{package_name}.{module_name}")
        module.__doc__ = f"hf_av shim: {why}."
        setattr(module, class_name, type(class_name, (), {"__doc__": module.__doc__}))
        sys.modules[module.__name__] = module


def load_upstream_common() -> types.ModuleType:
    """Import upstream `test_modeling_common` from the extracted folder (`UpstreamUnavailable` if it can't)."""
    qualified = f"{PACKAGE}.test_modeling_common"
    if qualified in sys.modules:
        return sys.modules[qualified]
    folder = upstream_tests_dir()
    if not (folder / "test_modeling_common.py").is_file():
        raise UpstreamUnavailable(
            f"Transformers' own tests are not at {folder} (run `bash .ci/fetch-transformers-tests .venv/bin/python` "
            "or `bash .ci/tests`, which fetches the installed release's sdist, or set HF_AV_TRANSFORMERS_TESTS)"
        )
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(folder)]
    package.__file__ = str(folder / "__init__.py")
    sys.modules[PACKAGE] = package
    _install_shims(folder)
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        # e.g. `parameterized`, a test-only dependency of upstream's tests (in hf-av's `dev` extra)
        raise UpstreamUnavailable(
            f"Transformers' own tests at {folder} need {error.name!r}: pip install -e '.[dev]' (or bash .ci/tests)"
        ) from error


def require_upstream() -> types.ModuleType:
    """`load_upstream_common()`, or skip the calling test module (outside CI) / fail it (in CI)."""
    try:
        return load_upstream_common()
    except UpstreamUnavailable as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run Transformers' common model tests: {error}", pytrace=False)
        pytest.skip(str(error), allow_module_level=True)


def skip_upstream(prefix: str, reason: str):
    """Class decorator: skip, with `reason`, every inherited upstream test named `prefix` or `prefix_<params>`
    (upstream expands parameterized tests into one method per parameter set)."""

    def decorate(test_class):
        names = [name for name in dir(test_class) if name == prefix or name.startswith(prefix + "_")]
        if not names:
            raise AttributeError(f"{test_class.__name__} inherits no test named {prefix!r}: update the skip")
        for name in names:

            @unittest.skip(reason)
            def skipped(self):
                pass

            skipped.__name__ = name
            setattr(test_class, name, skipped)
        return test_class

    return decorate


# ---------------------------------------------------------------------------------------------------------------------
# Reusable pieces for multi-stream (audio / visual / joint) models
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamSpec:
    """What one stream reports. `hidden_states` / `attentions` name the output fields (None: not reported).

    `num_hidden_states` counts the stream's input plus one per layer; `seq_length` and `width` are the last two
    dims of every hidden state; attentions are `[..., num_heads, seq_length, seq_length]`, one per layer.
    """

    hidden_states: str | None
    attentions: str | None
    num_hidden_states: int
    num_attentions: int
    seq_length: int
    width: int
    num_heads: int


class SmallModelTester:
    """Base of a family's tester: holds the test case and the tiny sizes the upstream tests read."""

    batch_size = 3
    is_training = True

    def __init__(self, parent):
        self.parent = parent

    # upstream tests also read `hidden_size` and `num_hidden_layers` from the tester: set them in the subclass

    def get_config(self):
        raise NotImplementedError

    def prepare_config_and_inputs_for_common(self):
        raise NotImplementedError

    def streams(self, model_class) -> dict[str, StreamSpec]:
        raise NotImplementedError


def _with_gradients(outputs) -> torch.Tensor:
    """A scalar that depends on every float output that carries a gradient (every stream, not only outputs[0])."""
    total = None
    for value in outputs.values():
        if isinstance(value, torch.Tensor) and value.requires_grad:
            total = value.float().mean() if total is None else total + value.float().mean()
    return total


class MultiStreamTests:
    """Per-stream versions of upstream's `test_hidden_states_output`, `test_attention_outputs` and
    `test_retain_grad_hidden_states_attentions` (which read one `outputs.hidden_states` / `outputs.attentions`).

    They check the same things upstream checks, for every stream `model_tester.streams(model_class)` names:
    the number of states / attention maps, their shapes, both ways of asking (call argument and config), nothing
    reported when not asked, and gradients reaching the first state and first attention map of each stream.
    """

    def _forward(self, model_class, config, inputs_dict, **flags):
        model = model_class._from_config(config, attn_implementation="eager")
        model.eval()
        with torch.no_grad():
            return model(**self._prepare_for_class(inputs_dict, model_class), **flags)

    def _check_hidden_states(self, outputs, model_class):
        for name, spec in self.model_tester.streams(model_class).items():
            if spec.hidden_states is None:
                continue
            states = getattr(outputs, spec.hidden_states)
            self.assertIsInstance(states, tuple, f"{model_class.__name__} {name} stream: {spec.hidden_states}")
            self.assertEqual(len(states), spec.num_hidden_states, f"{model_class.__name__} {name} stream")
            for state in states:
                self.assertEqual(list(state.shape[-2:]), [spec.seq_length, spec.width], f"{name} stream")

    def _check_attentions(self, outputs, model_class):
        for name, spec in self.model_tester.streams(model_class).items():
            if spec.attentions is None:
                continue
            maps = getattr(outputs, spec.attentions)
            self.assertIsInstance(maps, tuple, f"{model_class.__name__} {name} stream: {spec.attentions}")
            self.assertEqual(len(maps), spec.num_attentions, f"{model_class.__name__} {name} stream")
            for attention in maps:
                self.assertEqual(
                    list(attention.shape[-3:]), [spec.num_heads, spec.seq_length, spec.seq_length], f"{name} stream"
                )

    def test_hidden_states_output(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            outputs = self._forward(model_class, config, inputs_dict, output_hidden_states=True)
            self._check_hidden_states(outputs, model_class)
            for spec in self.model_tester.streams(model_class).values():
                if spec.attentions is not None:
                    self.assertIsNone(getattr(outputs, spec.attentions), f"{spec.attentions} returned without asking")
            # the same through the config
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            config.output_hidden_states = True
            self._check_hidden_states(self._forward(model_class, config, inputs_dict), model_class)

    def test_attention_outputs(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            outputs = self._forward(model_class, config, inputs_dict, output_attentions=True)
            self._check_attentions(outputs, model_class)
            for spec in self.model_tester.streams(model_class).values():
                if spec.hidden_states is not None:
                    self.assertIsNone(getattr(outputs, spec.hidden_states), f"{spec.hidden_states} returned without asking")
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            config.output_attentions = True
            self._check_attentions(self._forward(model_class, config, inputs_dict), model_class)
            # both at once: neither list changes
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            outputs = self._forward(model_class, config, inputs_dict, output_attentions=True, output_hidden_states=True)
            self._check_attentions(outputs, model_class)
            self._check_hidden_states(outputs, model_class)

    def test_retain_grad_hidden_states_attentions(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            model = model_class._from_config(config, attn_implementation="eager")
            model.train()
            outputs = model(
                **self._prepare_for_class(inputs_dict, model_class), output_hidden_states=True, output_attentions=True
            )
            kept = []
            for name, spec in self.model_tester.streams(model_class).items():
                for field in (spec.hidden_states, spec.attentions):
                    if field is not None and getattr(outputs, field):
                        first = getattr(outputs, field)[0]
                        first.retain_grad()
                        kept.append((f"{name}: {field}[0]", first))
            _with_gradients(outputs).backward()
            for label, tensor in kept:
                self.assertIsNotNone(tensor.grad, f"{model_class.__name__}: no gradient reached {label}")

    def test_eager_matches_sdpa_per_stream(self):
        """fp32 eager and SDPA attention give the same states on every stream (and the same loss / logits)."""
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            eager = model_class._from_config(config, attn_implementation="eager").eval()
            sdpa = model_class._from_config(config, attn_implementation="sdpa").eval()
            sdpa.load_state_dict(eager.state_dict())
            inputs = self._prepare_for_class(inputs_dict, model_class, return_labels=True)
            with torch.no_grad():
                outputs_eager = eager(**inputs, output_hidden_states=True)
                outputs_sdpa = sdpa(**inputs, output_hidden_states=True)
            compared = 0
            for name, spec in self.model_tester.streams(model_class).items():
                if spec.hidden_states is not None:
                    torch.testing.assert_close(
                        getattr(outputs_sdpa, spec.hidden_states)[-1], getattr(outputs_eager, spec.hidden_states)[-1],
                        atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{model_class.__name__} {name} stream: {m}",
                    )
                    compared += 1
            for field in ("loss", "logits"):
                if getattr(outputs_eager, field, None) is not None:
                    torch.testing.assert_close(getattr(outputs_sdpa, field), getattr(outputs_eager, field), atol=1e-5, rtol=1e-4)
            self.assertGreater(compared, 0, "no stream compared")
