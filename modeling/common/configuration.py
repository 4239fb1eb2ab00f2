"""Config validation shared by every hf_av family.

Family configs are `@strict` dataclasses as in Transformers 5, so an invalid value raises huggingface_hub's
`StrictDataclassError` (what Transformers' own configs raise). hf_av's configs raised `ValueError` before they
became dataclasses, and callers catch that; `strict_config` keeps both contracts by re-raising every validation
error as :class:`InvalidConfigError`, a subclass of both, with the original message and cause.

Usage::

    @strict_config
    class MyConfig(PreTrainedConfig):
        model_type = "my-model"
        hidden_size: int = 64

        def validate_architecture(self):
            if self.hidden_size < 1:
                raise ValueError(f"MyConfig.hidden_size must be >= 1, got {self.hidden_size}")
"""

from __future__ import annotations

import functools

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError

__all__ = ["InvalidConfigError", "strict_config"]


class InvalidConfigError(StrictDataclassError, ValueError):
    """An hf_av config field or combination of fields is invalid (the message names the field)."""


def _reraise_as_invalid_config(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except InvalidConfigError:
            raise
        except StrictDataclassError as error:
            raise InvalidConfigError(str(error)) from error

    return wrapper


def strict_config(cls):
    """`@strict` for an hf_av config class, raising :class:`InvalidConfigError` on invalid values."""
    cls = strict(cls)
    # `strict` generates these three entry points; every validation error leaves through one of them.
    for name in ("__init__", "__setattr__", "validate"):
        setattr(cls, name, _reraise_as_invalid_config(getattr(cls, name)))
    return cls
