"""`import hf_av` with another project's `modeling` earlier on sys.path fails with an error that names it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _import_hf_av(path_entry: Path, cwd: Path) -> subprocess.CompletedProcess:
    # `path_entry` first on sys.path (as a working directory or PYTHONPATH would put it), the checkout after it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path_entry), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", "import hf_av"], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize("layout", ["module", "package"])
def test_a_shadowing_modeling_is_named_with_the_way_out(tmp_path, layout):
    other = tmp_path / "other_project"
    other.mkdir()
    if layout == "module":
        shadow = other / "modeling.py"
        shadow.write_text("X = 1\n")
    else:  # like the original VATT repository's `vatt/modeling/`
        shadow = other / "modeling"
        shadow.mkdir()
        (shadow / "__init__.py").write_text("")
        (shadow / "backbones.py").write_text("")
    result = _import_hf_av(other, cwd=tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: hf_av cannot use its `modeling` package"), result.stderr
    assert str(shadow) in last and str(ROOT / "modeling") in last
    assert ("a module, not a package" if layout == "module" else "(a package)") in last
    assert f"take {other} off sys.path" in last
    assert "is not a package" not in result.stderr  # the old, puzzling failure


def test_a_modeling_folder_without_init_does_not_shadow(tmp_path):
    """A namespace-package folder loses to hf_av's regular package, so it must not be reported."""
    other = tmp_path / "other_project"
    (other / "modeling").mkdir(parents=True)
    result = _import_hf_av(other, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_an_already_imported_foreign_modeling_is_named(tmp_path):
    other = tmp_path / "other_project"
    other.mkdir()
    (other / "modeling.py").write_text("")
    code = f"import sys; sys.path.insert(0, {str(other)!r}); import modeling; sys.path.pop(0); import hf_av"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "is already imported from" in result.stderr and str(other / "modeling.py") in result.stderr
