"""Reusable model test suite for hf_av families (in the spirit of Transformers' `ModelTesterMixin`).

A family test class inherits `ModelTesterMixin` and `unittest.TestCase` and provides:

* `all_model_classes`: the `PreTrainedModel` classes to test;
* `get_config()` -> a tiny config (< 1M parameters, fast on CPU);
* `get_inputs(model_class, config, batch_size)` -> forward kwargs for that class; deterministic (pass explicit mask
  noise for pre-training heads) and built from a fixed seed so two calls return equal tensors;
* `hidden_states_spec(model_class, config, batch_size)` -> `{output_field: (count, shape_of_each)}` for
  `output_hidden_states=True`; `attentions_spec(...)` the same for `output_attentions=True` (eager);
* `batch_independent_fields(model_class)` -> output fields whose row `i` depends only on sample `i`;
* `loss_kwargs(model_class, config, batch_size)` -> extra kwargs (e.g. labels) making the output carry a loss, or
  None when the class has no loss;
* optionally `params_without_grad(model_class)` -> name substrings of parameters that legitimately get no gradient
  in that forward (unused LayerNorm variants, frozen tables).

Every check compares whole `ModelOutput`s field by field (nested tuples flattened).
"""

from __future__ import annotations

import inspect
import tempfile

import torch
from transformers import AutoConfig, AutoModel

ATOL = 1e-5
ROUND_TRIP_ATOL = 2e-6  # last-bit kernel differences only (see test_save_load_round_trip)


def flatten_output(output, prefix: str = "") -> dict[str, torch.Tensor]:
    """`{field(.index): tensor}` for every tensor in a ModelOutput / tuple (None entries skipped)."""
    flat: dict[str, torch.Tensor] = {}
    items = output.items() if hasattr(output, "items") else enumerate(output)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            flat[name] = value
        elif isinstance(value, (tuple, list)):
            flat.update(flatten_output(value, prefix=f"{name}."))
    return flat


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    return (a.detach().double() - b.detach().double()).abs().max().item()


class ModelTesterMixin:
    all_model_classes: tuple = ()
    model_size_limit = 1_000_000

    # --- hooks the family test provides ------------------------------------------------------------------------------
    def get_config(self):
        raise NotImplementedError

    def get_inputs(self, model_class, config, batch_size: int = 2) -> dict:
        raise NotImplementedError

    def hidden_states_spec(self, model_class, config, batch_size: int) -> dict:
        raise NotImplementedError

    def attentions_spec(self, model_class, config, batch_size: int) -> dict:
        raise NotImplementedError

    def batch_independent_fields(self, model_class) -> list[str]:
        raise NotImplementedError

    def loss_kwargs(self, model_class, config, batch_size: int) -> dict | None:
        return None

    def params_without_grad(self, model_class) -> tuple[str, ...]:
        return ()

    # --- helpers ----------------------------------------------------------------------------------------------------
    def _model(self, model_class, config=None, **config_updates):
        config = config if config is not None else self.get_config()
        for key, value in config_updates.items():
            setattr(config, key, value)
        torch.manual_seed(0)
        return model_class(config).eval()

    def assert_outputs_close(self, first, second, atol: float = ATOL, fields=None):
        a, b = flatten_output(first), flatten_output(second)
        self.assertEqual(sorted(a), sorted(b), "outputs carry different fields")
        for key in a if fields is None else [k for k in a if k.split(".")[0] in fields]:
            self.assertEqual(a[key].shape, b[key].shape, key)
            diff = max_abs_diff(a[key], b[key])
            self.assertLessEqual(diff, atol, f"{key}: max abs diff {diff}")

    # --- tests ------------------------------------------------------------------------------------------------------
    def test_model_is_small(self):
        for model_class in self.all_model_classes:
            model = self._model(model_class)
            self.assertLess(model.num_parameters(), self.model_size_limit, model_class.__name__)

    def test_main_input_name(self):
        for model_class in self.all_model_classes:
            first = list(inspect.signature(model_class.forward).parameters)[1]
            self.assertEqual(first, model_class.main_input_name, model_class.__name__)

    def test_determinism(self):
        for model_class in self.all_model_classes:
            model, config = self._model(model_class), self.get_config()
            with torch.no_grad():
                self.assert_outputs_close(model(**self.get_inputs(model_class, config)),
                                          model(**self.get_inputs(model_class, config)), atol=0.0)

    def test_save_load_round_trip(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            inputs = self.get_inputs(model_class, config)
            with torch.no_grad():
                before = model(**inputs)
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                reloaded = model_class.from_pretrained(tmp).eval()
                with tempfile.TemporaryDirectory() as tmp2:  # a second round trip
                    reloaded.save_pretrained(tmp2)
                    twice = model_class.from_pretrained(tmp2).eval()
                    for loaded in (reloaded, twice):
                        expected, found = model.state_dict(), loaded.state_dict()
                        self.assertEqual(sorted(expected), sorted(found))
                        for key, value in expected.items():
                            self.assertTrue(torch.equal(value, found[key]), f"{key} changed in the round trip")
                    # Weights are bit-equal; outputs may still differ in the last bit: loaded tensors sit at another
                    # memory alignment (safetensors offsets), and oneDNN/MKL choose kernels by alignment.
                    with torch.no_grad():
                        self.assert_outputs_close(before, reloaded(**inputs), atol=ROUND_TRIP_ATOL)
                        self.assert_outputs_close(before, twice(**inputs), atol=ROUND_TRIP_ATOL)
                    for name, parameter in model.named_parameters():
                        self.assertEqual(parameter.requires_grad, dict(twice.named_parameters())[name].requires_grad, name)

    def test_auto_classes(self):
        config = self.get_config()
        with tempfile.TemporaryDirectory() as tmp:
            config.save_pretrained(tmp)
            self.assertEqual(type(AutoConfig.from_pretrained(tmp)), type(config))
            base_class = self.all_model_classes[0]
            model = self._model(base_class, config)
            model.save_pretrained(tmp)
            self.assertIsInstance(AutoModel.from_pretrained(tmp), base_class)

    def test_base_model_weights_load_into_heads(self):
        base_class = self.all_model_classes[0]
        config = self.get_config()
        base = self._model(base_class, config)
        with tempfile.TemporaryDirectory() as tmp:
            base.save_pretrained(tmp)
            for model_class in self.all_model_classes[1:]:
                head = model_class.from_pretrained(tmp)
                inner = getattr(head, model_class.base_model_prefix)
                for name, tensor in base.state_dict().items():
                    self.assertTrue(torch.equal(tensor, inner.state_dict()[name]), f"{model_class.__name__}: {name}")

    def test_meta_device_init(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            reference = self._model(model_class, config)
            with torch.device("meta"):
                model = model_class(config)
            self.assertTrue(all(p.device.type == "meta" for p in model.parameters()))
            model.to_empty(device="cpu")
            torch.manual_seed(0)
            model.init_weights()
            model.eval()
            for name, tensor in model.state_dict().items():
                self.assertFalse(tensor.is_meta, name)
                self.assertTrue(torch.isfinite(tensor).all(), name)
                if "position" in name:  # fixed tables must be re-created exactly
                    self.assertTrue(torch.equal(tensor, reference.state_dict()[name]), name)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for key, tensor in flatten_output(output).items():
                if tensor.is_floating_point():
                    self.assertTrue(torch.isfinite(tensor).all(), key)

    def test_init_all_missing_weights(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = model_class.from_pretrained(None, config=config, state_dict={})
            for name, tensor in model.state_dict().items():
                self.assertFalse(tensor.is_meta, name)
                self.assertTrue(torch.isfinite(tensor).all(), name)

    def test_tuple_dict_equivalence(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            variants = [{}, {"output_hidden_states": True}, {"output_attentions": True}]
            if self.loss_kwargs(model_class, config, 2) is not None:
                variants.append(self.loss_kwargs(model_class, config, 2))
            for extra in variants:
                inputs = {**self.get_inputs(model_class, config), **extra}
                with torch.no_grad():
                    as_dict = model(**inputs, return_dict=True)
                    as_tuple = model(**inputs, return_dict=False)
                self.assertIsInstance(as_tuple, tuple)
                expected = as_dict.to_tuple()
                self.assertEqual(len(as_tuple), len(expected), f"{model_class.__name__} {extra}")
                self.assert_outputs_close(dict(enumerate(expected)), dict(enumerate(as_tuple)), atol=0.0)

    def test_batching_equivalence(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            batched = self.get_inputs(model_class, config, batch_size=3)
            with torch.no_grad():
                full = model(**batched)
                for i in range(3):
                    single = {k: (v[i : i + 1] if isinstance(v, torch.Tensor) else v) for k, v in batched.items()}
                    one = model(**single)
                    for field in self.batch_independent_fields(model_class):
                        diff = max_abs_diff(full[field][i : i + 1], one[field])
                        self.assertLessEqual(diff, ATOL, f"{model_class.__name__}.{field}[{i}]: {diff}")
                        self.assertTrue(torch.isfinite(full[field]).all())

    def test_hidden_states_output(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config), output_hidden_states=True)
                plain = model(**self.get_inputs(model_class, config))
            for field, (count, shape) in self.hidden_states_spec(model_class, config, 2).items():
                states = output[field]
                self.assertEqual(len(states), count, f"{model_class.__name__}.{field}")
                for state in states:
                    self.assertEqual(tuple(state.shape), tuple(shape), f"{model_class.__name__}.{field}")
                self.assertIsNone(plain.get(field), f"{field} returned without output_hidden_states")
            config.output_hidden_states = True  # the config default is honoured too
            model = self._model(model_class, config)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for field in self.hidden_states_spec(model_class, config, 2):
                self.assertIsNotNone(output[field])

    def test_attention_outputs(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            model.set_attn_implementation("eager")
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config), output_attentions=True)
            for field, (count, shape) in self.attentions_spec(model_class, config, 2).items():
                maps = output[field]
                self.assertEqual(len(maps), count, f"{model_class.__name__}.{field}")
                for attention in maps:
                    self.assertEqual(tuple(attention.shape), tuple(shape), f"{model_class.__name__}.{field}")
                    torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_eager_matches_sdpa(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            with tempfile.TemporaryDirectory() as tmp:
                self._model(model_class, config).save_pretrained(tmp)
                eager = model_class.from_pretrained(tmp, attn_implementation="eager").eval()
                sdpa = model_class.from_pretrained(tmp, attn_implementation="sdpa").eval()
            self.assertEqual(eager.config._attn_implementation, "eager")
            self.assertEqual(sdpa.config._attn_implementation, "sdpa")
            inputs = self.get_inputs(model_class, config)
            with torch.no_grad():
                self.assert_outputs_close(eager(**inputs), sdpa(**inputs), atol=ATOL)
                # switching at run time takes effect
                sdpa.set_attn_implementation("eager")
                self.assert_outputs_close(eager(**inputs), sdpa(**inputs), atol=0.0)

    def test_training_and_gradient_checkpointing(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            loss_kwargs = self.loss_kwargs(model_class, config, 2)
            if loss_kwargs is None:
                continue
            inputs = {**self.get_inputs(model_class, config), **loss_kwargs}
            grads = {}
            for checkpointing in (False, True):
                model = self._model(model_class, config)
                model.train()
                if checkpointing:
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                    self.assertTrue(model.is_gradient_checkpointing)
                loss = model(**inputs).loss
                loss.backward()
                grads[checkpointing] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
                skip = self.params_without_grad(model_class)
                for name, parameter in model.named_parameters():
                    if parameter.requires_grad and not any(s in name for s in skip):
                        self.assertIsNotNone(parameter.grad, f"{model_class.__name__}: no grad for {name}")
            self.assertEqual(sorted(grads[False]), sorted(grads[True]))
            for name in grads[False]:
                diff = max_abs_diff(grads[False][name], grads[True][name])
                self.assertLessEqual(diff, 1e-5, f"{model_class.__name__} grad {name}: {diff}")

    def test_dtype_loading(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            with tempfile.TemporaryDirectory() as tmp:
                self._model(model_class, config).save_pretrained(tmp)
                model = model_class.from_pretrained(tmp, dtype=torch.bfloat16).eval()
            self.assertTrue(all(p.dtype == torch.bfloat16 for p in model.parameters()))
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for key, tensor in flatten_output(output).items():
                if tensor.is_floating_point() and tensor.dim() > 1:
                    self.assertEqual(tensor.dtype, torch.bfloat16, key)
                    self.assertTrue(torch.isfinite(tensor).all(), key)
