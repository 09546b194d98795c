import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3y-for-these-tests-only-" + "Zq8vR2mW9xL4pT7nB1cY6hJ3fD5sG0aE"
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": GOOD_KEY,
    "DJANGO_ALLOWED_HOSTS": "annotation.example.org",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def run(args: list[str], **env):
    """Run `python *args` under config.settings with only `env` of the DJANGO_* variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def setting(name: str, **env) -> str:
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    result = run(["-c", code], **env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_debug_is_off_unless_django_debug_is_set():
    assert setting("DEBUG", DJANGO_SECRET_KEY=GOOD_KEY) == "False"


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = run(["-c", "import django; django.setup()"], DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "change-me",
        "django-insecure-" + "abcdefghij" * 5,
        "insecure-development-key-only-used-with-DJANGO_DEBUG=1",
        "x" * 60,
        "please-change-me-" + "0123456789" * 4,
    ],
)
def test_production_settings_refuse_a_placeholder_secret_key(key):
    result = run(["-c", "import django; django.setup()"], DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_start_with_a_real_secret_key():
    assert setting("SECRET_KEY", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=GOOD_KEY) == GOOD_KEY


def test_https_settings_are_set_from_the_environment():
    assert setting("SECURE_PROXY_SSL_HEADER", **PRODUCTION) == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert setting("SECURE_HSTS_SECONDS", **PRODUCTION) == "31536000"


def test_check_deploy_is_clean_with_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_acquisition_choices_match_the_sampler():
    from annotation.models import ACQUISITION_CHOICES
    from sampler.acquisition import ACQUISITIONS

    assert {name for name, _ in ACQUISITION_CHOICES} == {*ACQUISITIONS, "auto"}
