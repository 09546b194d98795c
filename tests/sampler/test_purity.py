import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sampler_imports_no_django_celery_drf_or_annotation():
    code = (
        "import sys, sampler, sampler.acquisition, sampler.ensemble, sampler.features, "
        "sampler.selection, sampler.pool, sampler.simulate, sampler.allocation\n"
        "banned = ('django', 'celery', 'rest_framework', 'annotation')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in banned]\n"
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_importing_the_sampler_package_alone_does_not_load_torch():
    code = "import sys, sampler\nassert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
