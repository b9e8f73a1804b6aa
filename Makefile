# Two commands matter: `make run` serves the API and admin with a worker and the scheduler,
# `make test` runs the suite. Both work from a fresh clone: they create .venv, install what
# they need, and start PostgreSQL and Redis when they are installed but stopped.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Two cores here: four workers of two threads each (`make bench`, docs/scaling.md). Requests
# are mostly Python CPU, which one process runs on one core at a time (the GIL): two
# processes per core keep both busy, two threads each overlap waits on PostgreSQL and Redis.
WORKERS ?= 4
THREADS ?= 2
# Processes of one Celery worker (`make worker`; one per core is the usual start).
CELERY_CONCURRENCY ?= 2
export HOST PORT WORKERS THREADS CELERY_CONCURRENCY

.PHONY: run test lint install install-dev services migrate collectstatic clean bench worker beat

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

services:
	@scripts/services-up

migrate: install services
	@$(BIN)/python manage.py ensure_database
	$(BIN)/python manage.py migrate --no-input

collectstatic: install
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0

# Web, one worker and the scheduler (Procfile), logs interleaved; Ctrl-C stops all three. The web
# process is production's: a1zap/gunicorn_conf.py, whose workers' event loops take requests
# whole (slow clients hold no thread), then run them on THREADS threads.
run: migrate collectstatic
	HOST=$(HOST) WORKERS=$(WORKERS) THREADS=$(THREADS) \
		$(BIN)/honcho start --procfile Procfile --port $(PORT)

# Production runs these on hosts of their own, any number of workers and one beat.
worker: migrate
	$(BIN)/celery -A a1zap worker --loglevel INFO --concurrency $(CELERY_CONCURRENCY)

beat: migrate
	$(BIN)/celery -A a1zap beat --loglevel INFO --schedule .celerybeat-schedule

test: install-dev services
	@scripts/browser-up
	@DJANGO_SETTINGS_MODULE=a1zap.settings.test $(BIN)/python manage.py ensure_database --check
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

# Benchmarks on their own database (BENCH_DATABASE_URL, default a1zap_bench): one table of
# figures, each beside its floor. wrk (a C load generator) is installed when missing;
# without it the bench falls back to a slower Python client. Full sizes (about 10 minutes):
#   make bench BENCH_ARGS="--close-agents 100000 --admin-agents 1000000"
bench: install services collectstatic
	@command -v wrk >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| (sudo -n apt-get update -qq && sudo -n apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| echo "wrk could not be installed; the bench uses its Python load client"
	$(BIN)/python bench/run.py --configs $(WORKERS)x$(THREADS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .celerybeat-schedule*
