# The Celery app is created with Django, so that `@shared_task`s bind to it in every process
# (web, worker, beat, manage.py).
from a1zap.celery import app as celery_app

__all__ = ["celery_app"]
