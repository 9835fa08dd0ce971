"""Tradewind settings: everything comes from the environment, with a safe embedded default.

Embedded mode (nothing set) runs on SQLite in the data directory with the local executor and an in-memory
channel layer. `TRADEWIND_ENV=production` refuses the development secret key and missing encryption keys.
Every variable read here is listed in the README's configuration table.
"""

import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "tradewind-insecure-development-key"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TRADEWIND_ENV = os.environ.get("TRADEWIND_ENV", "development").strip().lower()
IS_PRODUCTION = TRADEWIND_ENV == "production"

DATA_DIR = Path(os.environ.get("TRADEWIND_DATA_DIR") or BASE_DIR / "data").resolve()
# Sandboxed tenant processes run under other uids: they may pass through the data directory to reach their
# bundle (search permission), but may not list it or read the database, the keys or the logs.
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATA_DIR.chmod(0o711)
BUNDLE_ROOT = DATA_DIR / "bundles"
LOG_ROOT = DATA_DIR / "logs"


def _embedded_fernet_key() -> str:
    """The embedded mode's key: generated into the data directory on first start, private to its owner."""
    key_file = DATA_DIR / "fernet.key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    return key_file.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
FERNET_KEYS = _env_list("TRADEWIND_FERNET_KEYS", "")
if IS_PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a private random value when TRADEWIND_ENV=production"
        )
    if not FERNET_KEYS:
        raise ImproperlyConfigured(
            "TRADEWIND_FERNET_KEYS must list at least one Fernet key when TRADEWIND_ENV=production"
        )
else:
    SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY
    FERNET_KEYS = FERNET_KEYS or [_embedded_fernet_key()]

DEBUG = _env_bool("TRADEWIND_DEBUG", not IS_PRODUCTION)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "channels",
    "tradewind",
    "tradewind.accounts",
    "tradewind.secrets",
    "tradewind.audit",
    "tradewind.live",
    "tenants",
    "scheduler",
    "workers",
    "frontend",
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
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "tradewind.urls"
ASGI_APPLICATION = "tradewind.asgi.application"
WSGI_APPLICATION = "tradewind.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant",
            ],
        },
    },
]

# SQLite waits for a lock instead of failing at once, takes write locks up front (no upgrade deadlocks)
# and runs in WAL mode so readers never block the scheduler's writes.
_SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
SQLITE_FILE = DATA_DIR / "tradewind.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_FILE}"
if not os.environ.get("DATABASE_URL"):
    os.close(os.open(SQLITE_FILE, os.O_CREAT | os.O_WRONLY, 0o600))  # private before SQLite first opens it
    SQLITE_FILE.chmod(0o600)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
# PostgreSQL spends most of a small query's time parsing and planning it: with parameters bound on the server,
# psycopg prepares a statement once its connection has sent it TRADEWIND_DB_PREPARE_THRESHOLD times, and the
# engine's per-task statements then skip both. "off" for a pooler that cannot keep prepared statements
# (PgBouncer in transaction mode before 1.21).
DB_PREPARE_THRESHOLD = os.environ.get("TRADEWIND_DB_PREPARE_THRESHOLD", "2")
if DB_PREPARE_THRESHOLD != "off" and not DB_PREPARE_THRESHOLD.isdigit():
    raise ImproperlyConfigured(
        f"TRADEWIND_DB_PREPARE_THRESHOLD must be a whole number or 'off', not {DB_PREPARE_THRESHOLD!r}"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_PREPARE_THRESHOLD != "off":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=int(DB_PREPARE_THRESHOLD)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = _SQLITE_OPTIONS
    # Tests run real threads and processes against the database: an in-memory SQLite would lock up.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-tradewind.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"
LOGOUT_REDIRECT_URL = "login"
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # embedded mode serves static files without a collectstatic step

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "tradewind.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Channels: Redis when REDIS_URL is set (several web processes share events), in-memory otherwise.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: a broker URL selects the Celery executor; without one the local executor runs tasks.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
TRADEWIND_EXECUTOR = "celery" if CELERY_BROKER_URL else "local"
# Where people reach the UI: the links tasks are given to their own pages (Airflow's `ti.log_url`).
TRADEWIND_BASE_URL = os.environ.get("TRADEWIND_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# On Redis, kombu's transport with one client per channel (workers/broker.py); other URLs keep their own.
CELERY_BROKER_TRANSPORT = "workers.broker:Transport" if CELERY_BROKER_URL.startswith("redis://") else None
# A running task instance's thread mostly waits for its sandboxed child: more of them than cores keeps the cores
# busy (fanout_500 on 2 cores: 8 at once ran about 8 % faster than 4).
TRADEWIND_PARALLELISM = int(os.environ.get("TRADEWIND_PARALLELISM") or max(8, 4 * (os.cpu_count() or 1)))

# Scheduler: lease length for HA takeover, the longest sleep between passes, when a queued task's message
# counts as lost (sent again), and when a running task without heartbeats counts as dead (retried).
TRADEWIND_LEASE_SECONDS = float(os.environ.get("TRADEWIND_LEASE_SECONDS", "15"))
TRADEWIND_SCHEDULER_MAX_SLEEP = float(os.environ.get("TRADEWIND_SCHEDULER_MAX_SLEEP", "5"))
TRADEWIND_QUEUED_TIMEOUT = float(os.environ.get("TRADEWIND_QUEUED_TIMEOUT", "300"))
TRADEWIND_ZOMBIE_TIMEOUT = float(os.environ.get("TRADEWIND_ZOMBIE_TIMEOUT", "60"))
TRADEWIND_HEARTBEAT_SECONDS = float(os.environ.get("TRADEWIND_HEARTBEAT_SECONDS", "5"))
TRADEWIND_TRIGGERER_POLL_SECONDS = float(os.environ.get("TRADEWIND_TRIGGERER_POLL_SECONDS", "5"))

# DAG repositories and parsing: files per bundle, .airflowignore syntax, per-file parse limits.
TRADEWIND_BUNDLE_MAX_FILES = int(os.environ.get("TRADEWIND_BUNDLE_MAX_FILES", "5000"))
TRADEWIND_DAG_IGNORE_FILE_SYNTAX = os.environ.get("TRADEWIND_DAG_IGNORE_FILE_SYNTAX", "regexp")
TRADEWIND_PARSE_TIMEOUT = float(os.environ.get("TRADEWIND_PARSE_TIMEOUT", "30"))
TRADEWIND_PARSE_MEMORY_MB = (
    int(os.environ["TRADEWIND_PARSE_MEMORY_MB"]) if os.environ.get("TRADEWIND_PARSE_MEMORY_MB") else None
)
# Sandboxed tenant code runs as uid = gid = base + tenant id when the platform runs as root.
TRADEWIND_SANDBOX_UID_BASE = int(os.environ.get("TRADEWIND_SANDBOX_UID_BASE", "200000"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TRADEWIND_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# --- Task runner, task logs and `dags test` (workers/runner.py, workers/rpc.py, workers/logs.py) ---
# Where task logs go: a dotted path to a workers.logs.LogStore subclass (the default writes files under
# LOG_ROOT), and the largest XCom value a task may push, in bytes of its JSON form.
TRADEWIND_LOG_STORE = os.environ.get("TRADEWIND_LOG_STORE", "workers.logs.LogStore")
TRADEWIND_XCOM_MAX_BYTES = int(os.environ.get("TRADEWIND_XCOM_MAX_BYTES") or 1024 * 1024)


# ---------------------------------------------------------------------------------------------------------
# Security (issue 5): API tokens, login lockout, throttling, encrypted secrets, Vault, audit log.
# ---------------------------------------------------------------------------------------------------------

# Django's cache backs login lockout and API throttling: Redis (shared by every process) when REDIS_URL is
# set, this process's memory otherwise (embedded mode runs one web process).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tradewind",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Bearer tokens are resolved before the tenant is bound, so TenantMiddleware sees the token's user and cap.
MIDDLEWARE.insert(
    MIDDLEWARE.index("tenants.middleware.TenantMiddleware"),
    "tradewind.accounts.middleware.ApiTokenMiddleware",
)
AUTHENTICATION_BACKENDS = [
    "tradewind.accounts.backends.LockoutBackend"
    if path == "django.contrib.auth.backends.ModelBackend"
    else path
    for path in AUTHENTICATION_BACKENDS
]
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "tradewind.accounts.authentication.BearerTokenAuthentication",
    *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
]
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["tradewind.accounts.throttling.TokenRateThrottle"]

TRADEWIND_TOKEN_RATE = os.environ.get("TRADEWIND_TOKEN_RATE", "600/min")  # per token, DRF's rate syntax
TRADEWIND_TOKEN_USED_AUDIT_SECONDS = int(os.environ.get("TRADEWIND_TOKEN_USED_AUDIT_SECONDS", "60"))
TRADEWIND_LOGIN_MAX_FAILURES = int(os.environ.get("TRADEWIND_LOGIN_MAX_FAILURES", "5"))
TRADEWIND_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("TRADEWIND_LOGIN_LOCKOUT_SECONDS", "900"))
TRADEWIND_MASK_MIN_LENGTH = int(os.environ.get("TRADEWIND_MASK_MIN_LENGTH", "5"))

# Per-tenant data keys are wrapped by the platform Fernet keys ("fernet") or by Vault transit ("vault").
TRADEWIND_KEY_WRAPPER = os.environ.get("TRADEWIND_KEY_WRAPPER", "fernet").strip().lower()
TRADEWIND_VAULT_URL = os.environ.get("TRADEWIND_VAULT_URL", "")
TRADEWIND_VAULT_TOKEN = os.environ.get("TRADEWIND_VAULT_TOKEN", "")
TRADEWIND_VAULT_KV_MOUNT = os.environ.get("TRADEWIND_VAULT_KV_MOUNT", "secret")
TRADEWIND_VAULT_PATH_PREFIX = os.environ.get("TRADEWIND_VAULT_PATH_PREFIX", "tradewind/{tenant}")
TRADEWIND_VAULT_CACHE_TTL = float(os.environ.get("TRADEWIND_VAULT_CACHE_TTL", "30"))
TRADEWIND_VAULT_TIMEOUT = float(os.environ.get("TRADEWIND_VAULT_TIMEOUT", "5"))
TRADEWIND_VAULT_TRANSIT_MOUNT = os.environ.get("TRADEWIND_VAULT_TRANSIT_MOUNT", "transit")
TRADEWIND_VAULT_TRANSIT_KEY = os.environ.get("TRADEWIND_VAULT_TRANSIT_KEY", "tradewind")
if TRADEWIND_KEY_WRAPPER not in {"fernet", "vault"}:
    raise ImproperlyConfigured("TRADEWIND_KEY_WRAPPER must be fernet or vault")
if TRADEWIND_KEY_WRAPPER == "vault" and not TRADEWIND_VAULT_URL:
    raise ImproperlyConfigured("TRADEWIND_VAULT_URL must be set when TRADEWIND_KEY_WRAPPER=vault")

# Audit retention: entries older than this many days are archived (0 keeps everything) by `audit archive`;
# checkpoints are signed with TRADEWIND_AUDIT_SIGNING_KEY (default: derived from SECRET_KEY).
TRADEWIND_AUDIT_RETENTION_DAYS = int(os.environ.get("TRADEWIND_AUDIT_RETENTION_DAYS", "0"))
TRADEWIND_AUDIT_ARCHIVE_DIR = Path(
    os.environ.get("TRADEWIND_AUDIT_ARCHIVE_DIR") or DATA_DIR / "audit-archive"
)
TRADEWIND_AUDIT_SIGNING_KEY = os.environ.get("TRADEWIND_AUDIT_SIGNING_KEY", "")
