"""The README's plain-PyTorch loader of a downloaded model gives the ensemble's own
predictions (the block after `<!-- model-loader` is run as it is written)."""

import re
from pathlib import Path

import numpy as np

from sampler.ensemble import MLPEnsemble

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_loader() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- model-loader.*?-->\n```python\n(.*?)```", text, re.S)
    assert match, "README lost its model-loader block"
    return match.group(1)


def test_the_readme_loader_predicts_what_the_ensemble_predicts(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1)
    model = MLPEnsemble(n_members=3, epochs=5, random_state=0).fit(X, y, 3)
    (tmp_path / "project-2-round-7.pt").write_bytes(model.to_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(readme_loader(), namespace)
    plain = namespace["predict_proba"](X).numpy()
    np.testing.assert_allclose(plain, model.predict_proba(X).mean(0), atol=1e-5)
