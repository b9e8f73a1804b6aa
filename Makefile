# Two commands matter: `make run` serves the API and admin, `make test` runs the suite.
# Both work from a fresh clone: they create .venv and install what they need.

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

.PHONY: run test lint install install-dev migrate collectstatic clean bench

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

migrate: install
	@$(BIN)/python manage.py ensure_database
	$(BIN)/python manage.py migrate --no-input

collectstatic: install
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0

# a1zap/gunicorn_conf.py is production's configuration too: each worker's event loop takes
# requests whole (slow clients hold no thread), then runs them on THREADS threads.
run: migrate collectstatic
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) THREADS=$(THREADS) \
		$(BIN)/gunicorn -c a1zap/gunicorn_conf.py

test: install-dev
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
bench: install
	@command -v wrk >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| (sudo -n apt-get update -qq && sudo -n apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| echo "wrk could not be installed; the bench uses its Python load client"
	$(BIN)/python bench/run.py --configs $(WORKERS)x$(THREADS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles
