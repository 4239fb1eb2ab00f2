"""Exceptions raised by hf_av. All derive from ValueError so callers can treat bad input uniformly."""


class HfAvError(ValueError):
    """Base class of hf_av's input errors."""


class MediaDecodingError(HfAvError):
    """A media file (or bytes) could not be decoded as asked; the message names the file and the problem."""


class CheckpointConversionError(HfAvError):
    """An original checkpoint could not be converted; the message names the offending keys or shapes."""
