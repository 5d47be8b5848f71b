"""Streamsite settings: everything comes from the environment, with defaults for the
embedded mode (SQLite and a Redis under var/). The README has a table of every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

from streamsite.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("STREAMSITE_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = envstr("SECRET_KEY", "") or _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "django_rq",
    "events",
]

# Django's stock middleware, skipped for /api/ (events/api/middleware.py says why).
MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",  # first: problems and refusals get CORS too
    "events.api.middleware.SecurityMiddleware",
    "events.api.middleware.ProblemMiddleware",
    "events.api.middleware.AllowedHostsMiddleware",
    "events.api.middleware.SessionMiddleware",
    "events.api.middleware.CommonMiddleware",
    "events.api.middleware.CsrfViewMiddleware",
    "events.api.middleware.AuthenticationMiddleware",
    "events.api.middleware.MessageMiddleware",
    "events.api.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "streamsite.urls"
ASGI_APPLICATION = "streamsite.asgi.application"
APPEND_SLASH = False

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

_SQLITE_DEFAULT = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(envstr("DATABASE_URL", _SQLITE_DEFAULT))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the API, the workers and the test process read while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory: end-to-end tests share it with a server in another process.
    # One per test run, so that two runs on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)

# Redis: the embedded server's socket under var/ unless REDIS_URL names another.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = envstr("REDIS_URL", f"unix://{EMBEDDED_REDIS_SOCKET}")
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300}}
# Connections each server process keeps to Redis at most; more commands at once wait for one.
REDIS_MAX_CONNECTIONS = envint("REDIS_MAX_CONNECTIONS", 100)

# Background jobs (events/jobs/), enqueued by `manage.py rqcron events.jobs.schedule`: seconds
# between runs. A dead server's partitions move once its sessions expire (6 s); the reclaim
# job cleans up what they left within one more period.
JOB_PERIOD_SECONDS = envint("JOB_PERIOD_SECONDS", 5)
RETENTION_PERIOD_SECONDS = envint("RETENTION_PERIOD_SECONDS", 60)
# Log compaction (cleanup_policy compact, compact_and_delete; events/store/compaction.py)
# deletes a superseded event only once it is this old: a consumer that keeps up within it
# sees every event, one that lags more may see only the latest event of each key.
COMPACTION_MIN_AGE_MS = envint("COMPACTION_MIN_AGE_MS", 5 * 60 * 1000)
if COMPACTION_MIN_AGE_MS < 0:
    raise ValueError("COMPACTION_MIN_AGE_MS must be at least 0 (ms)")
STATS_PERIOD_SECONDS = envint("STATS_PERIOD_SECONDS", 15)
# A bearer token that GET /metrics requires; unset, /metrics is open (bind it privately).
METRICS_TOKEN = envstr("METRICS_TOKEN", "")

# CORS for the API and the streams (django-cors-headers; events/api/cors.py applies the
# same to the paths that skip Django). Other origins authenticate with tokens, never
# cookies: no credentials.
CORS_ALLOWED_ORIGINS = envlist("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "last-event-id",
    "x-nakadi-cursors",
    "x-flow-id",
)
CORS_EXPOSE_HEADERS = ("X-Nakadi-StreamId", "Location", "Retry-After")
CORS_ALLOW_CREDENTIALS = False

# Limits of the API (Nakadi's defaults where it has one).
MAX_EVENT_BYTES = envint("MAX_EVENT_BYTES", 1_000_000)
MAX_REQUEST_BYTES = envint("MAX_REQUEST_BYTES", 50_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
MAX_PARTITIONS = envint("MAX_PARTITIONS", 64)
DEFAULT_RETENTION_MS = envint("DEFAULT_RETENTION_MS", 2 * 24 * 3600 * 1000)
MAX_RETENTION_MS = envint("MAX_RETENTION_MS", 14 * 24 * 3600 * 1000)
EID_DEDUP_SECONDS = envint("EID_DEDUP_SECONDS", 24 * 3600)
if EID_DEDUP_SECONDS < 1:
    raise ValueError("EID_DEDUP_SECONDS must be at least 1 (second)")
# Events in one publishing request: bounds the work and the answer of a refused batch.
MAX_BATCH_EVENTS = envint("MAX_BATCH_EVENTS", 10_000)
# The drain on SIGTERM (events/streaming/draining.py): the whole drain ends within
# DRAIN_SECONDS (keep Kubernetes' terminationGracePeriodSeconds above it); a session that
# closed with `shutdown` accepts commits of what it sent for DRAIN_COMMIT_GRACE_SECONDS.
DRAIN_SECONDS = envint("DRAIN_SECONDS", 20)
DRAIN_COMMIT_GRACE_SECONDS = envint("DRAIN_COMMIT_GRACE_SECONDS", 5)
# Bytes a reader's client may fall behind by (what the server still holds for it) before
# its stream ends with `slow_consumer`; it resumes from its last position.
READER_BUFFER_BYTES = envint("READER_BUFFER_BYTES", 1_048_576)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # Notable events, shown however quiet LOG_LEVEL is: a server that drains.
        "events.streaming.draining": {"level": "INFO"},
    },
}
