"""One table that plugs every hf_av class into Transformers' Auto classes.

`register_all()` runs on `import hf_av` and is idempotent (``exist_ok=True`` everywhere).
"""


def _register_models() -> None:
    """Configs and models, per family."""


def _register_processors() -> None:
    """Feature extractors, image processors and processors, per family."""


def _register_pipelines() -> None:
    """Custom pipelines with Transformers' pipeline registry."""


def register_all() -> None:
    _register_models()
    _register_processors()
    _register_pipelines()
