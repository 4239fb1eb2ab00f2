import pytest

from .helpers import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("av_corpus")
    rows = make_corpus(root, 12)
    return root, rows
