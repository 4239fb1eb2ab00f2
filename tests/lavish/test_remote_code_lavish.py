"""A LAVisH folder exported as remote code loads with `trust_remote_code=True` where hf_av is not importable."""

import json
import os
import subprocess
import sys
import textwrap

import torch

from hf_av.hub.remote_code import export_remote_code
from modeling.lavish import LavishModel
from tests.lavish.test_modeling_lavish import open_gates, tiny_config, tiny_inputs

CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    # hide hf_av and modeling (editable install finder and every path holding them), as tests/hub/test_remote_code.py
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f) + getattr(f, "__module__", "")]
    sys.path[:] = [p for p in sys.path if p and not any(os.path.isdir(os.path.join(p, n)) for n in ("hf_av", "modeling"))]
    sys.path_importer_cache.clear()
    hidden = [importlib.util.find_spec(n) is None for n in ("hf_av", "modeling")]
    import torch
    from transformers import AutoModel
    folder = sys.argv[1]
    ref = torch.load(os.path.join(folder, "..", "reference.pt"), weights_only=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        pooled = model(input_values=ref["input_values"], pixel_values=ref["pixel_values"]).pooler_output
    print(json.dumps({
        "hidden": hidden,
        "loaded_hf_av": sorted(m for m in sys.modules if m.split(".")[0] in ("hf_av", "modeling")),
        "model_class": type(model).__name__,
        "close": bool(torch.allclose(pooled, ref["pooler_output"], atol=1e-6)),
    }))
    """
)


def test_loads_with_trust_remote_code_without_hf_av(tmp_path):
    torch.manual_seed(0)
    model = LavishModel(tiny_config()).eval()
    open_gates(model)
    inputs = tiny_inputs()
    with torch.no_grad():
        pooled = model(**inputs).pooler_output
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    auto_map = export_remote_code(folder)
    assert "AutoModel" in auto_map and "AutoConfig" in auto_map
    torch.save({**inputs, "pooler_output": pooled}, tmp_path / "reference.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run([sys.executable, "-I", "-c", CHILD, str(folder)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"hidden": [True, True], "loaded_hf_av": [], "model_class": "LavishModel", "close": True}
