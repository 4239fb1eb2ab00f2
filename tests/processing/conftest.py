import pytest

from ._media import write_test_video


@pytest.fixture(scope="session")
def test_video(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("media") / "clip.mp4")
