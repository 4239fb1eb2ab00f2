import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny test models run fastest on one thread: on a busy machine two threads wait on each other at every op
# (a tiny DG-SCT forward: 8 s on 2 threads vs 0.3 s on 1 at load 10). Parity tests keep two threads, the setting
# their bounds were measured with (fp32 summation order changes with the thread count). HF_AV_TEST_THREADS overrides.
TEST_THREADS = int(os.environ.get("HF_AV_TEST_THREADS", "1"))
PARITY_THREADS = int(os.environ.get("HF_AV_TEST_THREADS", str(min(2, os.cpu_count() or 1))))
torch.set_num_threads(TEST_THREADS)


@pytest.fixture(scope="module", autouse=True)
def _parity_thread_count(request):
    # module scope: autouse fixtures of a scope come first, so the modules' cached model outputs see the setting too
    if not request.path.name.startswith("test_conversion"):
        yield
        return
    torch.set_num_threads(PARITY_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(TEST_THREADS)


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
