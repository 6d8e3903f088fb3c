"""The OCSP service's ASGI application (certdesk/pki/asgi.py), for gunicorn's uvicorn worker:

    GUNICORN_APP=config.ocsp:application GUNICORN_WORKER_CLASS=uvicorn_worker.UvicornWorker \\
        gunicorn --config deploy/gunicorn.conf.py
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

# Imported after Django is set up: the service reads settings and the CA engine's models.
from certdesk.pki.asgi import ocsp_application  # noqa: E402

application = ocsp_application()
