"""Settings, all driven by the environment (see .env.example).

With no DATABASE_URL / CELERY_BROKER_URL the server runs on embedded defaults: an
embedded PostgreSQL (config/embedded_db.py, data under var/pg) and kombu's filesystem
transport under var/broker, so `make run` needs no services. With them set it uses those
servers (PostgreSQL and Redis in production). PostgreSQL is the only database.
"""

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.paths import BASE_DIR, VAR_DIR

VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Fail closed: DEBUG is off unless DJANGO_DEBUG says otherwise (bin/run sets it), and
# without DEBUG a real secret key is required.
DEBUG = env_bool("DJANGO_DEBUG", False)
DEV_SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG=1"
PLACEHOLDER_SECRET_MARKS = ("change-me", "changeme", "change_me", "placeholder", "your-secret")


def secret_key_problem(key: str) -> str | None:
    """Why `key` is no production secret (Django's deploy check's rules, and the
    placeholders of .env.example and the like), or None."""
    lowered = key.lower()
    if not key:
        return "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off."
    if key == DEV_SECRET_KEY or lowered.startswith("django-insecure"):
        return "DJANGO_SECRET_KEY is the insecure development key."
    if any(mark in lowered for mark in PLACEHOLDER_SECRET_MARKS):
        return "DJANGO_SECRET_KEY is a placeholder: generate a random one."
    if len(key) < 50 or len(set(key)) < 5:
        return "DJANGO_SECRET_KEY must be at least 50 characters, of at least 5 different ones."
    return None


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
# config.settings.test (DEBUG off, as Django's test runner wants) imports this module
# first: it runs on the development key.
if DEBUG or os.environ.get("DJANGO_SETTINGS_MODULE") == "config.settings.test":
    SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY
elif problem := secret_key_problem(SECRET_KEY):
    raise ImproperlyConfigured(problem)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from config.embedded_db import database_url

    url = database_url(VAR_DIR / "pg")  # started here if it is not running yet
    os.environ["DATABASE_URL"] = url  # child processes (the worker) use the same server
    return url


DATABASES = {
    "default": dj_database_url.parse(
        _database_url(),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        # A persistent connection is checked before a request reuses it: after a PostgreSQL
        # restart no request fails on a dead connection.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Request size limits: an import of a large pool goes through a multipart file upload.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("ANNOTATION_MAX_BODY_BYTES", 20 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Every multipart body is capped before it is read (annotation/api/uploads.py): at this
# size, or at ANNOTATION_MAX_IMPORT_BYTES for the item import.
ANNOTATION_MAX_UPLOAD_BYTES = int(os.environ.get("ANNOTATION_MAX_UPLOAD_BYTES", 2 * 1024 * 1024))
FILE_UPLOAD_HANDLERS = [
    "annotation.api.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
ANNOTATION_MAX_IMPORT_BYTES = int(os.environ.get("ANNOTATION_MAX_IMPORT_BYTES", 200 * 1024 * 1024))
ANNOTATION_MAX_IMPORT_ROWS = int(os.environ.get("ANNOTATION_MAX_IMPORT_ROWS", 1_000_000))

# HTTPS: cookies are secure without DEBUG; HSTS, the redirect to HTTPS and the header a
# TLS-terminating proxy sets are settable (see docs; `manage.py check --deploy` is clean
# with them set).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"):  # e.g. "HTTP_X_FORWARDED_PROTO,https"
    _header, _, _value = os.environ["DJANGO_SECURE_PROXY_SSL_HEADER"].partition(",")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.uploads.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # The client address behind this many reverse proxies (X-Forwarded-For) is the one
    # the login throttles count.
    "NUM_PROXIES": int(os.environ["DJANGO_NUM_PROXIES"])
    if os.environ.get("DJANGO_NUM_PROXIES")
    else None,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",
    # `?format=` is the export format, not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    "COERCE_DECIMAL_TO_STRING": False,
}
# Sign-in attempts (the token endpoint and the login form, POSTs only) per client address
# and per username, as DRF rates ("N/second|minute|hour|day"), counted in CACHES.
ANNOTATION_LOGIN_RATE_PER_IP = os.environ.get("ANNOTATION_LOGIN_RATE_PER_IP", "30/min")
ANNOTATION_LOGIN_RATE_PER_USERNAME = os.environ.get("ANNOTATION_LOGIN_RATE_PER_USERNAME", "10/min")
if os.environ.get("DJANGO_CACHE_REDIS_URL"):  # shared by every web process
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["DJANGO_CACHE_REDIS_URL"],
        }
    }

# The OpenAPI schema and its docs page: public, or (ANNOTATION_SCHEMA_AUTH=1) signed-in
# callers only.
ANNOTATION_SCHEMA_AUTH = env_bool("ANNOTATION_SCHEMA_AUTH", False)
SPECTACULAR_SETTINGS = {
    "TITLE": "Active-learning annotation server",
    "DESCRIPTION": "Projects, import, next/annotate/skip, export and rounds.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page is served from the installed package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery. Embedded default: kombu's filesystem transport under var/broker, and no result
# backend (round state lives in the database); production: Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged task (its worker died) is handed out again after this long.
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
    }
# Shard results and round state live in the database; no result backend is needed.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process loads PyTorch and warms it up before it reports ready (config/celery.py):
# give it time to, on a busy machine, instead of the default 4 s.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60
# Two queues: rounds (train, score shards, reduce) on the default one, featurizing on its
# own, so a long featurize never holds up a round (and its worker alone loads the text
# encoder). `celery -A config worker -Q <queue>` picks one; bin/run starts one of each.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "annotation")
ANNOTATION_FEATURIZE_QUEUE = os.environ.get(
    "ANNOTATION_FEATURIZE_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-featurize"
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "600"))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that sends a task while the broker is down gives up after about 0.3 s
# (the round is then retried by a later request) instead of hanging.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}

# Active-learning knobs (per project values live on the Project model).
ANNOTATION_SHARD_SIZE = int(os.environ.get("ANNOTATION_SHARD_SIZE", "50000"))
ANNOTATION_FEATURIZE_BATCH = int(os.environ.get("ANNOTATION_FEATURIZE_BATCH", "1000"))
# One featurize task works this long, then sends the rest to a new task (below the time
# limits: sentence embeddings run at ~250 texts/s per process on this 2-core machine).
ANNOTATION_FEATURIZE_SECONDS = float(os.environ.get("ANNOTATION_FEATURIZE_SECONDS", "120"))
# A project with nothing featurized yet gets this many rows first, in a task of their own,
# so a cold-start round queues the first items while the rest is featurized (0: off).
ANNOTATION_FEATURIZE_FIRST_BATCH = int(os.environ.get("ANNOTATION_FEATURIZE_FIRST_BATCH", "100"))
# A featurize task that neither started nor stored a batch for this long is sent again.
ANNOTATION_FEATURIZE_STALE_SECONDS = int(
    os.environ.get("ANNOTATION_FEATURIZE_STALE_SECONDS", "300")
)
# Every step of a round moves its heartbeat this often; a running round whose heartbeat is
# older than the stale limit lost its worker or its task, and the next hand-out replaces it.
ANNOTATION_ROUND_HEARTBEAT_SECONDS = float(
    os.environ.get("ANNOTATION_ROUND_HEARTBEAT_SECONDS", "5")
)
ANNOTATION_ROUND_STALE_SECONDS = int(os.environ.get("ANNOTATION_ROUND_STALE_SECONDS", "30"))
ANNOTATION_ROUND_RETRY_SECONDS = int(os.environ.get("ANNOTATION_ROUND_RETRY_SECONDS", "10"))
# A queued item that this many annotators skipped leaves the queue (status `skipped`,
# reservation released) until a manager returns it.
ANNOTATION_SKIP_LIMIT = int(os.environ.get("ANNOTATION_SKIP_LIMIT", "3"))
# Webhooks (annotation.services.webhooks): one labels.created delivery per hook at most
# every BATCH seconds; a failed delivery retried after RETRY seconds, doubling; receivers
# on loopback, private, link-local or other internal addresses refused unless ALLOW_PRIVATE.
ANNOTATION_WEBHOOK_BATCH_SECONDS = int(os.environ.get("ANNOTATION_WEBHOOK_BATCH_SECONDS", "5"))
ANNOTATION_WEBHOOK_RETRY_SECONDS = int(os.environ.get("ANNOTATION_WEBHOOK_RETRY_SECONDS", "10"))
ANNOTATION_WEBHOOK_ALLOW_PRIVATE = env_bool("ANNOTATION_WEBHOOK_ALLOW_PRIVATE", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
