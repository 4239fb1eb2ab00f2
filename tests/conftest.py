import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def pytest_configure(config):
    # Transformers' own common tests (tests/transformers_common) carry upstream marks that our --strict-markers
    # would refuse; register whatever marks the fetched release uses, so a newer release needs no edit here.
    import re

    from tests.transformers_common.upstream import upstream_tests_dir

    folder = upstream_tests_dir()
    for name in ("test_modeling_common.py", "test_configuration_common.py"):
        path = folder / name
        if path.is_file():
            for mark in sorted(set(re.findall(r"\bmark\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))):
                config.addinivalue_line("markers", f"{mark}: mark of Transformers' own tests")
