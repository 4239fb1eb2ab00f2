"""Puts the installed transformers release's own `tests/` folder (fetched by `.ci/fetch-transformers-tests`) on
the import path as the package `transformers_upstream_tests`, before the test modules here import from it.

When the folder is absent, every module here is skipped with the reason (outside CI) or fails (in CI, `CI=true`):
see `upstream.require_upstream`.
"""

from .upstream import UpstreamUnavailable, load_upstream_common

try:
    load_upstream_common()
except UpstreamUnavailable:
    pass  # reported per module by require_upstream(): a skip with its reason, or a failure in CI
