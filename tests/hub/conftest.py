from tests.pipelines.conftest import classifier_dir, media, pretraining_dir  # noqa: F401
