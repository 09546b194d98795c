"""The structural rules of the code base, checked: the import contracts (pyproject.toml,
import-linter) and the web process's promise never to load PyTorch."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """sampler imports no Django/Celery/annotation; services never import tasks and
    items, rounds and queue import each other in one direction only."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


WEB_REQUESTS = """
import sys
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
# Every page and API a web process serves, as an anonymous caller and through the URL
# resolver: whatever they import is imported.
for path in ["/", "/accounts/login/", "/api/schema/", "/api/projects/", "/api/projects/1/next/",
             "/projects/1/", "/projects/1/label/"]:
    client.get(path)
import config.urls, annotation.api.views, annotation.views, annotation.admin, annotation.tasks
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sentence_transformers"))
assert not loaded, loaded[:5]
"""


def test_the_web_process_never_imports_torch():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    result = subprocess.run(
        [sys.executable, "-c", WEB_REQUESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
