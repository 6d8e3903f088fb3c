import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

# Imported after Django is set up: the fast path reads settings and the CA engine's models.
from certdesk.pki.wsgi import ocsp_fast_path  # noqa: E402

# OCSP requests are answered without Django's URL resolver and middleware (certdesk/pki/wsgi.py).
application = ocsp_fast_path(django_application)
