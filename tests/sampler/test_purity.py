import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sampler_imports_no_django_celery_or_drf():
    code = (
        "import sys, sampler, sampler.acquisition, sampler.ensemble, sampler.features, "
        "sampler.selection, sampler.pool, sampler.simulate\n"
        "banned = ('django', 'celery', 'rest_framework', 'annotation')\n"
        "bad = [m for m in banned if m in sys.modules]\n"
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
