"""gunicorn's worker hook: a worker freezes what it loaded out of the collector's reach."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import gc, runpy
import django
django.setup()
conf = runpy.run_path("a1zap/gunicorn_conf.py")
assert gc.get_freeze_count() == 0
conf["post_worker_init"](None)
print(gc.get_freeze_count())
"""


def test_a_worker_freezes_django_and_its_views_after_loading() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "a1zap.settings.test"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 100_000
