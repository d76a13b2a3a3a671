"""Runwatch settings: one file, everything that differs between machines comes from the environment.

Defaults are the embedded ones (SQLite under .runwatch/, the private Redis that `make run` starts), so a
fresh clone works with no configuration. Production sets DEBUG=0 and the variables listed in docs/configuration.md.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_list

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("RUNWATCH_STATE_DIR", BASE_DIR / ".runwatch"))


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, or DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-runwatch-local-development-only"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_rq",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "accounts",
    "datasets",
    "experiments",
    "runs",
    "results",
    "live",
    "sharing",
]

MIDDLEWARE = [
    # First: everything after it reads the client's address from REMOTE_ADDR (config/client_ip.py).
    "config.client_ip.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as axes asks: it turns a login that hit the throttle into the lock-out answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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

# --- Database ---------------------------------------------------------------------------------------
SQLITE_PATH = STATE_DIR / "db.sqlite3"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the workers write at the same time: WAL lets readers run beside the writer,
    # IMMEDIATE transactions take the write lock up front (no deadlocking lock upgrades) and the
    # timeout makes a writer wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Worker processes in the tests must open the same file, so the test database is a file too.
    DATABASES["default"]["TEST"] = {"NAME": str(STATE_DIR / "test.sqlite3")}
    STATE_DIR.mkdir(parents=True, exist_ok=True)
else:
    # CONN_MAX_AGE stays 0: under ASGI every sync_to_async thread would keep its own connection open, and
    # RQ forks work horses that must not share the worker's connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the RQ queue, the cache and the channel layer ---------------------------------------------
# RUNWATCH_REDIS_PORT, else the port `make run` recorded for the private Redis it started (scripts/private_redis.py
# --record-port), so `make worker` and `make cli` beside it find that Redis without repeating the variable.
REDIS_PORT_FILE = STATE_DIR / "redis-port"


def recorded_redis_port():
    try:
        text = REDIS_PORT_FILE.read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None


PRIVATE_REDIS_PORT = int(os.environ.get("RUNWATCH_REDIS_PORT") or recorded_redis_port() or 6389)
REDIS_URL = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{PRIVATE_REDIS_PORT}/0"
_redis_db = (urlsplit(REDIS_URL).path.strip("/") or "0")
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under pytest-xdist
if _xdist_worker.startswith("gw"):
    # Each pytest-xdist worker takes the Redis database after the suite's own, as pytest-django gives it a
    # database of its own: the tests flush their Redis database, and two workers must not flush each other's.
    # The processes its tests start get the resulting URL itself (tests.helpers.child_env), not the variable.
    _redis_db = str(int(_redis_db) + 1 + int(_xdist_worker[2:]))
    REDIS_URL = urlsplit(REDIS_URL)._replace(path=f"/{_redis_db}").geturl()

RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 24 * 3600}}
RQ = {"COMMIT_MODE": "on_db_commit"}
RQ_SHOW_ADMIN_LINK = False  # the admin index links to /admin/rq/ itself
# Lets a Prometheus scraper read /admin/rq/metrics/ with `Authorization: Bearer <token>` (staff sessions can
# always). Empty: no token is accepted.
RQ_API_TOKEN = os.environ.get("RQ_API_TOKEN", "")

# Django's cache is shared by every process through Redis: the API's login throttle (and anything else
# cached) must count the same for all daphne processes, not once per process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "runwatch",
    }
}

CHANNEL_LAYERS = {
    "default": {
        # One PUBLISH per event and no per-channel capacity to silently overflow. Delivery is at-most-once
        # either way, which is why every event is stored with a sequence number first.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            # Pub/sub ignores Redis database numbers, so the prefix keeps two installs on one server apart.
            "prefix": os.environ.get("CHANNEL_PREFIX", f"runwatch{_redis_db}"),
        },
    }
}

# --- Runs -------------------------------------------------------------------------------------------
RUNWATCH = {
    # Seconds a cancelling run may take to stop by itself before its work horse is killed.
    "CANCEL_GRACE_SECONDS": env_float("RUNWATCH_CANCEL_GRACE", 5.0),
    "HEARTBEAT_SECONDS": env_float("RUNWATCH_HEARTBEAT", 2.0),
    # No heartbeat for this long means the worker is gone; the reaper then fails the run.
    "WORKER_LOST_SECONDS": env_float("RUNWATCH_WORKER_LOST", 15.0),
    # The run page warns about a silent worker after this long, before the reaper decides.
    "STALE_WARNING_SECONDS": env_float("RUNWATCH_STALE_WARNING", 8.0),
    # A queued run whose RQ job has vanished from Redis for this long is failed.
    "QUEUED_LOST_SECONDS": env_float("RUNWATCH_QUEUED_LOST", 10.0),
    "PROGRESS_MIN_INTERVAL": env_float("RUNWATCH_PROGRESS_INTERVAL", 0.1),
    # The API's wait/ re-reads the run this often even without an event (layer delivery is at-most-once).
    "WAIT_RECHECK_SECONDS": env_float("RUNWATCH_WAIT_RECHECK", 2.0),
    # Per-run limits the work horse enforces (runs/worker/limits.py). A spec's `limits` may ask for more, up to the
    # ceilings; past its limit a run ends Failed with a message saying which limit and how to raise it.
    "RUN_TIME_LIMIT_SECONDS": int(env_float("RUNWATCH_RUN_TIME_LIMIT", 3600)),
    "RUN_TIME_LIMIT_MAX_SECONDS": int(env_float("RUNWATCH_RUN_TIME_LIMIT_MAX", 86400)),
    "RUN_MEMORY_LIMIT_MB": int(env_float("RUNWATCH_RUN_MEMORY_LIMIT_MB", 4096)),
    "RUN_MEMORY_LIMIT_MAX_MB": int(env_float("RUNWATCH_RUN_MEMORY_LIMIT_MAX_MB", 16384)),
    # Per-user quotas (accounts/quotas.py): the defaults for every user, staff included; staff raise or lower
    # them per user in the admin (Users, "Quota"). Runs past the running slots wait, queued, for a slot; a launch
    # past the queued count is refused (409). The largest memory and time a spec may ask for come below.
    "QUOTA_RUNNING": int(env_float("RUNWATCH_QUOTA_RUNNING", 2)),
    "QUOTA_QUEUED": int(env_float("RUNWATCH_QUOTA_QUEUED", 20)),
    # Uploaded datasets and promoted models together, in megabytes (5 GB).
    "QUOTA_STORAGE_MB": int(env_float("RUNWATCH_QUOTA_STORAGE_MB", 5120)),
    # Fits of one run at once, for a spec without "n_jobs": -1 is every core the worker may use (its CPU
    # affinity). With several RQ workers on one machine, give each cores / workers so they do not fight:
    # children x native threads stay within the cores either way (engine/runners/parallel.py caps the threads).
    "N_JOBS_DEFAULT": int(env_float("RUNWATCH_N_JOBS", -1)),
    # A Dask scheduler (tcp://host:8786) to spread a CV run's fits over a cluster (engine/runners/dask_fits.py); empty:
    # the fits stay on the worker's machine (loky). The Dask workers need this project installed (docs/dask.md).
    "DASK_SCHEDULER": os.environ.get("RUNWATCH_DASK_SCHEDULER", "").strip(),
    # The most a spec's "n_jobs" may ask for.
    "N_JOBS_MAX": int(env_float("RUNWATCH_N_JOBS_MAX", 64)),
    # Branches x variants x folds (x epochs) one run may ask for (engine.spec).
    "MAX_TOTAL_FITS": int(env_float("RUNWATCH_MAX_TOTAL_FITS", 10000)),
    # The largest CSV a dataset upload may be, in megabytes (shown on the page), and its most columns; the
    # same for the page, the API and the admin (datasets.checks).
    "DATASET_MAX_UPLOAD_MB": int(env_float("RUNWATCH_DATASET_MAX_UPLOAD_MB", 50)),
    "DATASET_MAX_COLUMNS": int(env_float("RUNWATCH_DATASET_MAX_COLUMNS", 1000)),
    # Finished runs that ended longer ago than this carry an "outdated" flag in the runs list (its filter too).
    "OUTDATED_DAYS": env_float("RUNWATCH_OUTDATED_DAYS", 30),
    # Whether anyone may create an account at /signup/ (off: accounts are made by staff).
    "SIGNUP_ENABLED": env_bool("RUNWATCH_SIGNUP", False),
    # PostgreSQL: the reporter's one-statement writes are server-side prepared statements (runs/rows.py). Off
    # only behind a pooler that cannot carry them (PgBouncer before 1.21 in transaction mode).
    "PREPARED_WRITES": env_bool("RUNWATCH_PREPARED_WRITES", True),
}
# The largest limits a user's spec may ask for default to the per-run defaults, not the ceilings: one user
# cannot take 16 GB and a day unless staff gave them that (never past the ceilings, whatever the quota says).
RUNWATCH["QUOTA_MEMORY_MB"] = int(env_float("RUNWATCH_QUOTA_MEMORY_MB", RUNWATCH["RUN_MEMORY_LIMIT_MB"]))
RUNWATCH["QUOTA_TIME_SECONDS"] = int(env_float("RUNWATCH_QUOTA_TIME_LIMIT", RUNWATCH["RUN_TIME_LIMIT_SECONDS"]))

# --- Auth, static, media ----------------------------------------------------------------------------
# How many reverse proxies in front of Runwatch append to X-Forwarded-For (nginx with
# `proxy_add_x_forwarded_for`, a load balancer...). 0, the default: the header is ignored and the peer's address
# is the client's. The one setting for the login throttle, DRF's throttles and the logs (config/client_ip.py).
TRUSTED_PROXIES = int(env_float("RUNWATCH_TRUSTED_PROXIES", 0))
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("RUNWATCH_TRUSTED_PROXIES must be 0 or more (the number of proxies in front).")

# The login throttle (django-axes, config/login_throttle.py): after AXES_FAILURE_LIMIT failed logins for one
# account, or from one address, logins for it are refused for the cool-off, counted from the last failure.
# The browser's and the admin's login forms and the API's token endpoint share the counters.
AUTHENTICATION_BACKENDS = [
    "config.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env_float("RUNWATCH_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=env_float("RUNWATCH_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # each on its own: per address, and per account
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_ip.request_ip"
AXES_LOCKOUT_CALLABLE = "config.login_throttle.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = STATE_DIR / "staticfiles"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", STATE_DIR / "media"))
MEDIA_URL = "media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Django's two handlers, but a file stops being kept once it passes DATASET_MAX_UPLOAD_MB; the form, the API
# and the admin then refuse it with the size message. Datasets are the only files users upload.
FILE_UPLOAD_HANDLERS = [
    "datasets.checks.LimitedMemoryFileUploadHandler",
    "datasets.checks.LimitedTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# With RUNWATCH_S3_BUCKET set, uploaded CSVs and model bundles live in an S3-compatible object store
# (django-storages), so web processes and workers on different machines share them; everything reads and
# writes them through the storage API (datasets.storage). Credentials come from AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, or boto3's other usual sources (an instance role, ~/.aws). Downloads always pass
# through Django (the SHA-256 is checked first), so objects need no public URL.
S3_BUCKET = os.environ.get("RUNWATCH_S3_BUCKET", "")
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "location": os.environ.get("RUNWATCH_S3_PREFIX", ""),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
            "default_acl": None,  # the bucket's own policy: private unless its owner says otherwise
            "file_overwrite": False,  # two uploads of "data.csv" get two names, as on a filesystem
            # A file read back (a download, a CSV, a bundle to promote) spills to this process's temporary
            # directory past this size instead of staying in memory.
            "max_memory_size": 8 * 1024 * 1024,
        },
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("TOKEN_THROTTLE_RATE", "20/min")},
    # ClientAddressMiddleware has already put the client's address in REMOTE_ADDR (TRUSTED_PROXIES); DRF must
    # not read X-Forwarded-For again itself, which it does whenever this is unset.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Runwatch API",
    "DESCRIPTION": "Launch, watch, stop and inspect scikit-learn experiment runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs UI is served from this app, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Run and step statuses share the field name "status"; give each enum its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "runs.models.Run.Status",
        "StepStatusEnum": "runs.models.RunStep.Status",
        "ShareLinkStatusEnum": "sharing.models.STATUSES",
        "StopRuleKindEnum": "runs.serializers.STOP_RULE_KINDS",
        "TaskKindEnum": "runs.serializers.TASK_KINDS",
    },
}

# --- Security: everything `check --deploy` asks for once DEBUG is off ----------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts, stylesheets, images and sockets only from this origin, no
# inline or eval'd script. htmx and its ws extension are files ({% htmx_script %}); htmx's own indicator
# <style> is switched off in base.html. Inline style *attributes* are allowed: progress bars set their width
# with one, and htmx copies attributes while it swaps. They cannot run script.
CONTENT_SECURITY_POLICY = {
    # django-rq's dashboard (staff only) has inline scripts in its own templates.
    "EXCLUDE_URL_PREFIXES": ["/admin/rq/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],  # 'self' covers ws:// and wss:// to this host
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"rq.worker": {"level": "WARNING"}},
}
