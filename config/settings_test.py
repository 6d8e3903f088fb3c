"""Test overlay: the suite runs tasks in-process and hashes passwords cheaply.

Everything else comes from `config.settings` and the environment
(DATABASE_URL selects PostgreSQL in CI).
"""

from config.settings import *  # noqa: F403

TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
# Argon2 stays the production hasher (tests/accounts check it); here it would cost ~50 ms a login.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_MODE = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
