"""certdesk settings: the one place that reads the environment.

Every deployment knob is an environment variable (or a line in `.env`); the
embedded defaults are what `make run` needs: SQLite, console message backends,
the sandbox payment gateway, demo mode on.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Demo mode: console backends keep every message for /demo/inbox/, demo data is allowed.
DEMO_MODE = env.bool("CERTDESK_DEMO", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-embedded-default-change-me-0123456789abcdef")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "certdesk.core",
    "certdesk.audit",
    "certdesk.accounts",
    "certdesk.notifications",
    "certdesk.catalog",
    "certdesk.portal",
    "certdesk.materials",
    "certdesk.orders",
    "certdesk.review",
    "certdesk.fulfilment",
    "certdesk.ra",
    "certdesk.invoices",
    "certdesk.pki",
    "certdesk.tokens",
    "certdesk.payments",
    "certdesk.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "certdesk.core.middleware.SecurityHeadersMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "certdesk" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "certdesk.portal.context_processors.portal",
            ],
        },
    },
]

# Database: SQLite (WAL) file by default, PostgreSQL when DATABASE_URL says so.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'certdesk.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: a write transaction takes the lock at BEGIN, so two writers
        # queue instead of one failing with "database is locked" on upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Lets the issuance writes prepare their statements (certdesk.pki.rows, which asks for it on every
    # execution, so the threshold's value does not matter); Django's own cursors bind client-side and
    # never prepare. Off (false) behind a pooler that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist")]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"  # uploads are served by views that check ownership, never directly
STORAGES = {
    "default": {"BACKEND": env.str("DEFAULT_FILE_STORAGE", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": env.str("STATICFILES_BACKEND", default="whitenoise.storage.CompressedStaticFilesStorage")
    },
}
# Serve straight from the finders when nothing was collected (make run, tests).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# Background work: Django's tasks API; the database backend and its worker by default.
TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}

# Messages to people. Each channel has a backend class; console ones print and,
# in demo mode, keep the message for the demo inbox.
SMS_BACKEND = env.str("SMS_BACKEND", default="certdesk.notifications.channels.sms.ConsoleSmsBackend")
SMS_PROVIDER_URL = env.str("SMS_PROVIDER_URL", default="")
SMS_PROVIDER_KEY_ID = env.str("SMS_PROVIDER_KEY_ID", default="")
SMS_PROVIDER_SECRET = env.str("SMS_PROVIDER_SECRET", default="")
SMS_SIGN_NAME = env.str("SMS_SIGN_NAME", default="东方中讯")
SMS_TEMPLATES = env.json("SMS_TEMPLATES", default={"verification_code": "", "notification": ""})
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="certdesk.notifications.channels.email.ConsoleInboxEmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="certdesk <noreply@certdesk.local>")
WECHAT_APP_ID = env.str("WECHAT_APP_ID", default="")
WECHAT_APP_SECRET = env.str("WECHAT_APP_SECRET", default="")
PAYMENT_GATEWAYS = env.list("PAYMENT_GATEWAYS", default=["sandbox"])
# Invoicing provider class (the demo one renders its own e-invoice PDF).
INVOICE_PROVIDER = env.str("INVOICE_PROVIDER", default="certdesk.invoices.providers.demo.DemoInvoiceProvider")
# Fernet keys for personal data at rest, newest first (empty: derived from SECRET_KEY).
PII_SEAL_KEYS = env.list("PII_SEAL_KEYS", default=[])
# Days after shipping when a parcel counts as received if the customer has not confirmed.
SHIPMENT_AUTO_COMPLETE_DAYS = env.int("SHIPMENT_AUTO_COMPLETE_DAYS", default=10)
# Counter address shown with the pickup code.
PICKUP_ADDRESS = env.str("PICKUP_ADDRESS", default="重庆市渝中区示例路 1 号 东方中讯服务大厅")

# Account security (注册及登录).
SMS_CODE_TTL_SECONDS = 5 * 60
SMS_CODE_RESEND_SECONDS = 60
SMS_CODE_MAX_PER_HOUR = 5
SMS_CODE_MAX_PER_DAY = 10
SMS_CODE_MAX_PER_IP_PER_HOUR = env.int("SMS_CODE_MAX_PER_IP_PER_HOUR", default=30)
SMS_CODE_MAX_ATTEMPTS = 5
LOGIN_MAX_FAILURES = 5
LOGIN_LOCKOUT_SECONDS = 15 * 60
LOGIN_MAX_FAILURES_PER_IP = env.int("LOGIN_MAX_FAILURES_PER_IP", default=50)

# Staff sign in with a password and a TOTP code (django-otp).
STAFF_OTP_REQUIRED = env.bool("STAFF_OTP_REQUIRED", default=True)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="certdesk")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline scripts anywhere; styles may be inline (htmx swaps, the PDF QR).
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
)

# Production: behind a TLS-terminating proxy (docs/deployment.md).
PRODUCTION = env.bool("CERTDESK_PRODUCTION", default=False)
if PRODUCTION:
    if SECRET_KEY.startswith("insecure-"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("Set SECRET_KEY (50+ random characters) for production.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Secure-sessionid"
    CSRF_COOKIE_NAME = "__Secure-csrftoken"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Resident ID and mobile numbers are masked in every record the handlers write (docs/security.md).
    "filters": {"pii": {"()": "certdesk.core.logging.PiiRedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["pii"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint reports every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "weasyprint.progress": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- notifications (issue #5): outbox delivery, WeChat official account, reminders ---
# WeChat channel class: the console one keeps messages for the demo inbox; set
# certdesk.notifications.channels.wechat.WechatTemplateChannel in production.
WECHAT_BACKEND = env.str("WECHAT_BACKEND", default="certdesk.notifications.channels.wechat.ConsoleWechatChannel")
WECHAT_API_BASE = env.str("WECHAT_API_BASE", default="https://api.weixin.qq.com")
WECHAT_OAUTH_AUTHORIZE_URL = env.str(
    "WECHAT_OAUTH_AUTHORIZE_URL", default="https://open.weixin.qq.com/connect/oauth2/authorize"
)
# event → template id, or → {"template_id": "...", "keys": ["character_string1", "thing2", ...]}
# (default field names keyword1, keyword2, …). Events without a template are not sent by WeChat.
WECHAT_TEMPLATES = env.json("WECHAT_TEMPLATES", default={})
WECHAT_TOKEN = env.str("WECHAT_TOKEN", default="")  # the server-callback token set in the WeChat console
WECHAT_TIMEOUT = env.int("WECHAT_TIMEOUT", default=10)
WECHAT_BINDING_MAX_AGE = env.int("WECHAT_BINDING_MAX_AGE", default=10 * 60)
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=12)
NOTIFY_RETRY_BASE_SECONDS = env.int("NOTIFY_RETRY_BASE_SECONDS", default=60)
NOTIFY_RETRY_MAX_SECONDS = env.int("NOTIFY_RETRY_MAX_SECONDS", default=4 * 3600)
# How long a worker may hold a claimed message; must exceed every provider timeout.
NOTIFY_LEASE_SECONDS = env.int("NOTIFY_LEASE_SECONDS", default=5 * 60)
NOTIFY_EXPIRY_REMIND_DAYS = env.list("NOTIFY_EXPIRY_REMIND_DAYS", cast=int, default=[30, 7, 1])
NOTIFY_EXPIRING_CERTIFICATES_SELECTOR = env.str(
    "NOTIFY_EXPIRING_CERTIFICATES_SELECTOR", default="certdesk.ra.selectors.expiring_certificates"
)

# --- deployment (issue #10) ---
# Production knobs read from the environment (docs/deployment.md has the full table). Each one is
# read only when its variable is set: with none of them set, nothing above changes, and the apps'
# conf.py defaults apply. `<NAME>_FILE` names a file holding a secret (systemd LoadCredential=).
import os as _os  # noqa: E402


def _deployment_env(name: str, cast: str = "str") -> None:
    value: object
    if f"{name}_FILE" in _os.environ:
        value = Path(_os.environ[f"{name}_FILE"]).read_text(encoding="utf-8").strip()
    elif name in _os.environ:
        value = getattr(env, cast)(name)
    else:
        return
    globals()[name] = value


for _name, _cast in [
    # CA engine (certdesk/pki/conf.py): keys in a PKCS#11 HSM or in encrypted PKCS#8 files.
    ("PKI_KEY_BACKEND", "str"),
    ("PKI_KEY_ALGORITHM", "str"),
    ("PKI_KEY_DIR", "path"),
    ("PKI_KEY_PASSPHRASE", "str"),
    ("PKI_PKCS11_MODULE", "str"),
    ("PKI_PKCS11_TOKEN_LABEL", "str"),
    ("PKI_PKCS11_PIN", "str"),
    ("PKI_PKCS11_POOL_SIZE", "int"),
    ("PKI_BASE_URL", "str"),
    ("PKI_CA_ORGANIZATION", "str"),
    ("PKI_ROOT_VALIDITY_YEARS", "int"),
    ("PKI_ISSUING_VALIDITY_YEARS", "int"),
    ("PKI_MAX_VALIDITY_YEARS", "int"),
    ("PKI_POLICY_OID", "str"),
    ("PKI_LINT_FAIL_SEVERITY", "str"),
    ("PKI_CRL_VALIDITY_HOURS", "float"),
    ("PKI_ROOT_CRL_VALIDITY_DAYS", "float"),
    ("PKI_CRL_LINT_MAX_ENTRIES", "int"),
    ("PKI_OCSP_VALIDITY_HOURS", "float"),
    ("PKI_OCSP_SIGNER_VALIDITY_DAYS", "float"),
    ("PKI_OCSP_SIGNER_RENEW_BEFORE_DAYS", "float"),
    ("PKI_OCSP_MEMORY_CACHE", "bool"),
    ("PKI_OCSP_MEMORY_CACHE_ENTRIES", "int"),
    ("PKI_OCSP_SERVICE_THREADS", "int"),
    ("PKI_STATE_DIR", "path"),
    ("PKI_REFRESH_INTERVAL_MINUTES", "float"),
    # Payments (certdesk/payments/conf.py).
    ("PAYMENT_SANDBOX_IN_PRODUCTION", "bool"),
    ("PAYMENT_TRANSACTION_TTL_MINUTES", "int"),
    ("PAYMENT_CALLBACK_MAX_AGE_SECONDS", "int"),
    ("PAYMENT_SANDBOX_MERCHANT_ID", "str"),
    ("WECHATPAY_MCHID", "str"),
    ("WECHATPAY_APPID", "str"),
    ("WECHATPAY_APIV3_KEY", "str"),
    ("WECHATPAY_PRIVATE_KEY", "str"),
    ("WECHATPAY_CERT_SERIAL_NO", "str"),
    ("WECHATPAY_PUBLIC_KEY", "str"),
    ("WECHATPAY_PUBLIC_KEY_ID", "str"),
    ("WECHATPAY_CERT_DIR", "str"),
    ("WECHATPAY_BASE_URL", "str"),
    ("WECHATPAY_NOTIFY_URL", "str"),
    ("WECHATPAY_TIMEOUT", "float"),
    ("ALIPAY_APP_ID", "str"),
    ("ALIPAY_APP_PRIVATE_KEY", "str"),
    ("ALIPAY_PUBLIC_KEY", "str"),
    ("ALIPAY_SELLER_ID", "str"),
    ("ALIPAY_GATEWAY_URL", "str"),
    ("ALIPAY_NOTIFY_URL", "str"),
    ("ALIPAY_TIMEOUT", "int"),
    # USB key inventory (certdesk/tokens/conf.py) and the agent API (certdesk/api/conf.py).
    ("TOKENS_DEMO_DIR", "str"),
    ("TOKENS_DEMO_USER_PIN", "str"),
    ("TOKENS_PIN_MAX_RETRIES", "int"),
    ("TOKENS_PKCS11_MODULE", "str"),
    ("AGENT_API_OPEN_MAX_FAILURES", "int"),
    ("AGENT_API_OPEN_WINDOW_SECONDS", "int"),
    # Uploads on S3-compatible storage: DEFAULT_FILE_STORAGE=storages.backends.s3.S3Storage
    # (django-storages[s3]); these are the settings it reads.
    ("AWS_STORAGE_BUCKET_NAME", "str"),
    ("AWS_S3_ENDPOINT_URL", "str"),
    ("AWS_S3_REGION_NAME", "str"),
    ("AWS_ACCESS_KEY_ID", "str"),
    ("AWS_SECRET_ACCESS_KEY", "str"),
    ("AWS_S3_ADDRESSING_STYLE", "str"),
    ("AWS_S3_SIGNATURE_VERSION", "str"),
    ("AWS_LOCATION", "str"),
    ("AWS_S3_FILE_OVERWRITE", "bool"),
    ("AWS_QUERYSTRING_EXPIRE", "int"),
    ("AWS_S3_VERIFY", "bool"),
    # Sessions (e.g. django.contrib.sessions.backends.cached_db with the Redis cache below).
    ("SESSION_ENGINE", "str"),
    # Paths answered over plain http too (regexes on the path without its leading /): ^pki/ keeps
    # OCSP and CRLs reachable at the http:// URLs written into certificates.
    ("SECURE_REDIRECT_EXEMPT", "list"),
    ("CONN_HEALTH_CHECKS", "bool"),
]:
    _deployment_env(_name, _cast)

if "CONN_HEALTH_CHECKS" in _os.environ and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS")
# A shared cache for every app server (redis://host:6379/1 → Django's RedisCache; needs `redis`).
if "CACHE_URL" in _os.environ:
    CACHES = {"default": env.cache_url("CACHE_URL")}
if "DEFAULT_FILE_STORAGE" in _os.environ and "s3" in _os.environ["DEFAULT_FILE_STORAGE"].lower():
    # Private objects: uploads are served through views that check ownership, never by URL.
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    globals().setdefault("AWS_S3_FILE_OVERWRITE", False)
