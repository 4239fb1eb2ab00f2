"""Decoding backends. Only PyAV is implemented; ``register_backend`` lets another (e.g. torchcodec) plug in."""

from __future__ import annotations

from typing import Callable

from ...errors import MediaDecodingError
from .base import AUDIO_CHANNEL_MODES, DecodeRequest, MediaBackend

__all__ = [
    "AUDIO_CHANNEL_MODES",
    "DecodeRequest",
    "MediaBackend",
    "available_backends",
    "get_backend",
    "register_backend",
]

_FACTORIES: dict[str, Callable[[], MediaBackend]] = {}
_INSTANCES: dict[str, MediaBackend] = {}


def register_backend(name: str, factory: Callable[[], MediaBackend]) -> None:
    """Make ``decode_media(..., backend=name)`` use ``factory()`` (created lazily, once)."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def get_backend(name: str | MediaBackend = "pyav") -> MediaBackend:
    if isinstance(name, MediaBackend):
        return name
    if name not in _FACTORIES:
        raise MediaDecodingError(f"unknown media backend {name!r}; available: {available_backends()}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def _pyav_factory() -> MediaBackend:
    try:
        from .pyav import PyAVBackend
    except ImportError as exc:  # pragma: no cover - av is a core dependency
        raise MediaDecodingError(f"the 'pyav' media backend needs the 'av' package ({exc})") from exc
    return PyAVBackend()


register_backend("pyav", _pyav_factory)
