"""gunicorn configuration for a certdesk app server (docs/deployment.md).

    gunicorn --config deploy/gunicorn.conf.py

Every value can be changed through the environment, so one file serves every
host; the systemd unit (deploy/systemd/certdesk-web.service) sets the ones a
host needs. The command line still wins over this file (bench/ uses that).
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


wsgi_app = os.environ.get("GUNICORN_APP", "config.wsgi:application")
# nginx reaches the app server over the private network: bind to that address (or a Unix socket,
# "unix:/run/certdesk/gunicorn.sock", when nginx runs on the same host).
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
# Request handling is CPU-bound Python (templates, ORM, signatures): one process per core serves
# most; threads hide database and disk waits. bench/portal.py measured 2 × 4 on 2 cores.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count())
# The OCSP service (config/ocsp.py, an ASGI app) runs GUNICORN_WORKER_CLASS=uvicorn_worker.UvicornWorker.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _int("GUNICORN_THREADS", 4)
# A restarted worker returns whatever memory fragmentation took (PDF rendering, image uploads).
max_requests = _int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)
# A 3 MB upload over a slow line is buffered by nginx first, so the app server never waits for it.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# nginx keeps connections to the app servers open (upstream keepalive); keep them longer than it does.
keepalive = _int("GUNICORN_KEEPALIVE", 75)
backlog = _int("GUNICORN_BACKLOG", 2048)
# Only the proxy may say which scheme and client address a request came from. Django reads
# X-Forwarded-Proto itself (SECURE_PROXY_SSL_HEADER); this list is for gunicorn's own use and logs.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# The heartbeat file lives in memory, not on a disk that may stall.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")  # noqa: S108
# Loading the app before forking shares its memory between workers (copy-on-write). Off by default:
# no database connection or PKCS#11 session may be opened before the fork (both are per process).
preload_app = os.environ.get("GUNICORN_PRELOAD", "false").lower() in ("1", "true", "yes")
proc_name = os.environ.get("GUNICORN_PROC_NAME", "certdesk-web")  # certdesk-ocsp for the OCSP service
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # "-" is stdout (journald under systemd); "" is none
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(L)ss "%(f)s" "%(a)s"'
limit_request_line = 8190
limit_request_fields = 100
