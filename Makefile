# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint fmt worker beat

PY := .venv/bin/python
# The suite runs in one process per core (pytest-xdist; "worksteal" evens out the long browser
# tests); `make test TEST_PROCESSES=0` runs it in one.
TEST_PROCESSES ?= auto

run:
	@bash scripts/venv.sh
	@$(PY) manage.py migrate --noinput
	@$(PY) manage.py seed_demo
	@echo "TrustDesk is at http://127.0.0.1:8000/ (Ctrl-C stops it)"
	@$(PY) manage.py runserver 127.0.0.1:8000

test:
	@bash scripts/venv.sh test
	@.venv/bin/lint-imports --no-cache
	@$(PY) -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

lint:
	@bash scripts/venv.sh test
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

fmt:
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

worker:
	@$(PY) -m celery -A trustdesk worker --loglevel=INFO

beat:
	@$(PY) -m celery -A trustdesk beat --loglevel=INFO
