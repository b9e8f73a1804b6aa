"""The entry point gunicorn serves (a1zap/gunicorn_conf.py): Django behind a1zap.server."""

import os

from django.core.wsgi import get_wsgi_application

from a1zap.server import BufferedWSGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a1zap.settings.base")

application = BufferedWSGI(get_wsgi_application())
