"""Test settings: the environment's services (see Makefile `test`), fast password hashing."""

import os

from config.settings import *  # noqa: F403
from config.settings import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each test session talks to its own queues (CELERY_TASK_DEFAULT_QUEUE is set per run by
# the Makefile), so a worker left over from a dev session never takes the tests' tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "annotation-tests")
ANNOTATION_FEATURIZE_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-featurize"
ANNOTATION_SHARD_SIZE = int(os.environ.get("ANNOTATION_SHARD_SIZE", "200"))
STATIC_ROOT = VAR_DIR / "static-test"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Sign-in throttles (tests/annotation/api/test_throttles.py lowers them where it tests
# them): far above what any other test sends.
ANNOTATION_LOGIN_RATE_PER_IP = ANNOTATION_LOGIN_RATE_PER_USERNAME = "10000/min"
# The live-server browser tests speak plain HTTP.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
