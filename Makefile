# Two commands matter: `make run` serves the API and admin, `make test` runs the suite.
# Both work from a fresh clone: they create .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Two cores here: two workers with four threads each keep both busy while requests wait on I/O.
WORKERS ?= 2
THREADS ?= 4

.PHONY: run test lint install install-dev migrate collectstatic clean

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

run: migrate collectstatic
	$(BIN)/gunicorn a1zap.wsgi:application --bind $(HOST):$(PORT) \
		--workers $(WORKERS) --threads $(THREADS) --access-logfile -

test: install-dev
	@DJANGO_SETTINGS_MODULE=a1zap.settings.test $(BIN)/python manage.py ensure_database --check
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) staticfiles
