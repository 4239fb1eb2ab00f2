"""Normalising what callers pass as a media source (path, bytes, binary file object)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

from ..errors import MediaDecodingError

__all__ = ["MediaSource", "MediaSourceLike", "as_media_source"]

MediaSourceLike = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


@dataclass
class MediaSource:
    """A source that can be opened more than once (a demux-only pre-scan, then the decode)."""

    name: str
    path: str | None = None
    data: bytes | None = None
    fileobj: Any = None
    _start: int = 0

    def open_binary(self):
        """What to hand to ``av.open`` / ``PIL.Image.open``: a path, or a fresh seekable file object."""
        if self.path is not None:
            return self.path
        if self.data is not None:
            return io.BytesIO(self.data)
        try:
            self.fileobj.seek(self._start)
        except (AttributeError, OSError, ValueError):
            pass
        return self.fileobj

    @property
    def reopenable(self) -> bool:
        return self.path is not None or self.data is not None or _is_seekable(self.fileobj)


def _is_seekable(f) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def as_media_source(source: MediaSourceLike, name: str | None = None) -> MediaSource:
    """Check the source exists / is readable and wrap it. Raises :class:`MediaDecodingError`."""
    if isinstance(source, MediaSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        label = name or path
        if not path:
            raise MediaDecodingError("media source is an empty path")
        if not os.path.exists(path):
            raise MediaDecodingError(f"{label}: file not found (expected an existing media file)")
        if os.path.isdir(path):
            raise MediaDecodingError(f"{label}: is a directory, expected a media file")
        if os.path.getsize(path) == 0:
            raise MediaDecodingError(f"{label}: file is empty (0 bytes), expected media data")
        return MediaSource(name=label, path=path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
        if not data:
            raise MediaDecodingError(f"{label}: no data (0 bytes), expected media data")
        return MediaSource(name=label, data=data)
    if hasattr(source, "read"):
        label = name or str(getattr(source, "name", None) or "<file-like>")
        start = 0
        if _is_seekable(source):
            try:
                start = source.tell()
            except (OSError, ValueError):
                start = 0
            return MediaSource(name=label, fileobj=source, _start=start)
        # A pipe or socket: read it once so that it can be opened again.
        data = source.read()
        if not data:
            raise MediaDecodingError(f"{label}: no data could be read from the file object")
        return MediaSource(name=label, data=bytes(data))
    raise MediaDecodingError(
        f"unsupported media source of type {type(source).__name__}: expected a path, bytes or a binary file object"
    )
