"""The Celery application: background work on a Redis broker (CELERY_BROKER_URL).

Tasks live in each owning app's `tasks.py` and are found by autodiscovery; they are written
to be idempotent (a key or a claim derived from the row they work on), because a task is
acknowledged only once it has run (`acks_late`) and a worker that dies mid-task has it
delivered again. Every task is a `jobs.recorded.RecordedTask`: one that exhausts its retries
is written to `failed_jobs`, where staff see it and can retry it. The schedule (Celery beat)
is `a1zap.schedule.BEAT_SCHEDULE`, in code so that it is reviewed like code.

    celery -A a1zap worker      # `make worker`
    celery -A a1zap beat        # `make beat`
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a1zap.settings.base")

app = Celery("a1zap", task_cls="jobs.recorded:RecordedTask")
# Every CELERY_* Django setting (a1zap/settings/base.py) configures the app.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
