"""TrustDesk settings: one module, read from the environment (docs/design.md section 3)."""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.utils.csp import CSP

from trustdesk.env import env_bool, env_list, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# No SECRET_KEY means the embedded default (make run, the tests): a fixed development key, plain
# http cookies, static files from the finders. A deployment sets SECRET_KEY and gets strict
# settings; core.checks warns when a non-DEBUG server runs without one.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
EMBEDDED = not SECRET_KEY
if EMBEDDED:
    SECRET_KEY = "django-insecure-trustdesk-embedded-development-key-not-for-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "trustdesk.core",
    "trustdesk.pacts",
    "trustdesk.incidents",
    "trustdesk.reviews",
    "trustdesk.metrics",
    "trustdesk.diligence",
    "trustdesk.agentapi",
    "trustdesk.notify",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "trustdesk.core.middleware.RefuseUnstorableTextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "trustdesk.core.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "trustdesk.urls"
WSGI_APPLICATION = "trustdesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trustdesk.core.context_processors.shell",
                "trustdesk.reviews.context_processors.my_work",
            ],
            "builtins": ["django_htmx.templatetags.django_htmx"],
        },
    }
]

# Database: DATABASE_URL, or a SQLite file in the project folder.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
_db = parse_database_url(DATABASE_URL, base_dir=BASE_DIR)
if _db["ENGINE"].endswith("sqlite3"):
    # A file (not memory) test database so that a real worker process can share it.
    # Named after the main file, so runs against different SQLite files never share one.
    _main = Path(_db["NAME"])
    _db["TEST"] = {"NAME": str(_main.with_name(f".test-{_main.stem}.sqlite3"))}
    _db["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    # A new connection per request costs about 8x on this machine: keep them.
    _db["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or EMBEDDED
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED
WHITENOISE_MANIFEST_STRICT = False
if WHITENOISE_USE_FINDERS:
    # Static files come from the finders; an absent STATIC_ROOT is expected, not a problem.
    warnings.filterwarnings("ignore", message="No directory at")

# Runtime data (uploaded evidence, the signing key) lives outside the static root and the repo.
DATA_DIR = Path(os.environ.get("TRUSTDESK_DATA_DIR", BASE_DIR / "data"))
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"  # never served directly: evidence goes through a view as an attachment
EVIDENCE_MAX_BYTES = int(os.environ.get("EVIDENCE_MAX_BYTES", str(25 * 1024 * 1024)))
# OTLP traces are parsed in memory when added (incidents.traces): a tighter cap.
TRACE_MAX_BYTES = int(os.environ.get("TRACE_MAX_BYTES", str(20 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Security. Production gets HTTPS-only cookies and HSTS; the embedded default runs on plain http.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not (DEBUG or EMBEDDED))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Client headers are trusted only when the deployment says a proxy sets them (docs/operations.md):
# otherwise any client could claim https or another address.
TRUSTDESK_TRUST_X_FORWARDED_PROTO = env_bool("TRUSTDESK_TRUST_X_FORWARDED_PROTO", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTDESK_TRUST_X_FORWARDED_PROTO else None
)
# The header the proxy writes the client address into (X-Real-IP, X-Forwarded-For); empty means
# the socket address. The buyer rate limit and the login lockout key on it (core.proxy).
TRUSTDESK_CLIENT_IP_HEADER = os.environ.get("TRUSTDESK_CLIENT_IP_HEADER", "").strip()
SECURE_HSTS_SECONDS = int(
    os.environ.get("SECURE_HSTS_SECONDS", "0" if (DEBUG or EMBEDDED) else "31536000")
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", [])
if not SECURE_SSL_REDIRECT:
    # TLS is terminated by the proxy in front of gunicorn (see docker-compose.yml).
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# Content-Security-Policy: no inline scripts or styles, nothing from other origins.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# The cache holds short-lived counters (buyer rate limits, metric refresh debouncing): shared
# through Redis in the full stack so every web process sees the same counts.
TRUSTDESK_INSTANCE_NAME = os.environ.get("TRUSTDESK_INSTANCE_NAME", "TrustDesk")
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "trustdesk",
            # An unreachable Redis must cost a page a fraction of a second, not a hang.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis when REDIS_URL is set, otherwise tasks run in-process (eager).
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# When Redis vanishes, a web request must not hang on enqueueing: fail fast and let beat catch up.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TIMEZONE = "UTC"


def _beat(task: str, schedule: timedelta | crontab) -> dict:
    """An entry of CELERY_BEAT_SCHEDULE: run the task of that name on `schedule`."""
    return {"task": task, "schedule": schedule}


# Every periodic task, in one schedule here as the design asks.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": _beat("trustdesk.core.tasks.record_heartbeat", timedelta(seconds=30)),
    "mark-stale-pacts": _beat("trustdesk.pacts.tasks.mark_stale_pacts", crontab(minute=5)),
    "recheck-reentry-conditions": _beat(
        "trustdesk.reviews.tasks.recheck_open_conditions", timedelta(minutes=3)
    ),
    # Refresh requests whose task was lost (broker down, worker killed): docs/operations.md.
    "catch-up-metric-refreshes": _beat(
        "trustdesk.metrics.tasks.catch_up_refreshes", timedelta(seconds=30)
    ),
    "recompute-all-metrics": _beat(
        "trustdesk.metrics.tasks.recompute_all_metrics", timedelta(minutes=10)
    ),
    "publish-obligation-alerts": _beat(
        "trustdesk.incidents.tasks.publish_obligation_alerts", timedelta(minutes=5)
    ),
}
HEARTBEAT_STALE_AFTER = timedelta(
    seconds=int(os.environ.get("TRUSTDESK_HEARTBEAT_STALE_SECONDS", "120"))
)
# A metrics refresh claim not renewed for this long is a dead worker's (docs/operations.md).
METRICS_CLAIM_TTL_SECONDS = float(os.environ.get("TRUSTDESK_METRICS_CLAIM_TTL_SECONDS", "30"))
# /healthz: how long it waits for Redis before calling it unreachable.
HEALTHZ_REDIS_TIMEOUT = float(os.environ.get("TRUSTDESK_HEALTHZ_REDIS_TIMEOUT", "0.5"))

# Login throttling (django-axes, docs/operations.md): after LOGIN_FAILURE_LIMIT wrong passwords
# for one username from one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    "trustdesk.core.auth.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "trustdesk.core.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "trustdesk.core.proxy.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
# Transparency log checkpoints (docs/design.md section 15): signed every minute when the log grew.
CELERY_BEAT_SCHEDULE["make-log-checkpoint"] = _beat(
    "trustdesk.diligence.tasks.make_log_checkpoint", timedelta(minutes=1)
)
# The checkpoints' origin line and signing key name; empty means trustdesk/<instance id>.
TRUSTDESK_LOG_ORIGIN = os.environ.get("TRUSTDESK_LOG_ORIGIN", "")

# Webhooks and notifications (trustdesk.notify, docs/design.md section 12). The sweep sends retries
# due after a long wait and whatever a broker outage left pending. TRUSTDESK_PUBLIC_URL turns the
# page paths in events into absolute URLs; e-mail goes through Django's mail settings.
CELERY_BEAT_SCHEDULE["deliver-due-messages"] = _beat(
    "trustdesk.notify.tasks.deliver_due", timedelta(seconds=30)
)
TRUSTDESK_PUBLIC_URL = os.environ.get("TRUSTDESK_PUBLIC_URL", "")
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
_MAILER = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if EMBEDDED
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {"default": {"BACKEND": _MAILER}}
if _MAILER.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": int(os.environ.get("EMAIL_PORT", "25")),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "timeout": 10,
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "trustdesk@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
