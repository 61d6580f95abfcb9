# 社区暖心助手 — developer entry points. A new user needs only `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/lock.txt | sha1sum | cut -c1-12)
DEMO_DB ?= sqlite+aiosqlite:///var/demo.db
# Where `make test` runs the suite a second time, when they answer.
TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# Rasa phones home by default; this project never calls the internet.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install train validate test-stories test test-pg check demo serve clean

install: $(STAMP)

# Rasa 3.6 declares Python <3.11; the lock is resolved for 3.10 and installed as-is on 3.11
# (README, "Regenerating the lock").
$(STAMP): requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--no-deps --ignore-requires-python --prefer-binary -r requirements/lock.txt
	rm -f $(VENV)/.installed-*
	touch $@

train: install
	$(BIN)/rasa train --out models

validate: install
	$(BIN)/rasa data validate --fail-on-warnings

# Rasa's own story tests (tests/test_stories.yml) against the newest model.
test-stories: install
	$(BIN)/rasa test core --stories tests/test_stories.yml --fail-on-prediction-errors \
		--out var/results

# Format and lint; the layers of docs/architecture.md (import-linter); types (mypy).
check: install
	$(BIN)/ruff format --check bot actions tests bench
	$(BIN)/ruff check bot actions tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

# The suite on SQLite, then again on PostgreSQL and Redis where they run (test-pg).
# Empty test variables are SQLite and no Redis, whatever the shell exports.
test: check
	BOT_TEST_DATABASE_URL= BOT_TEST_REDIS_URL= $(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-pg

# The tests that use a database or Redis, on the PostgreSQL server and Redis database below:
# each gets a database of its own on the server and an emptied Redis database
# (tests/databases.py). The others ran in the SQLite pass and would run the same here.
test-pg: install
	@if $(BIN)/python -m tests.services $(TEST_DATABASE_URL) $(TEST_REDIS_URL); then \
		echo "The suite on PostgreSQL + Redis: $(TEST_DATABASE_URL), $(TEST_REDIS_URL)"; \
		BOT_TEST_DATABASE_URL=$(TEST_DATABASE_URL) BOT_TEST_REDIS_URL=$(TEST_REDIS_URL) \
			$(BIN)/python -m pytest --storage-only; \
	else \
		echo "PostgreSQL/Redis not running on 127.0.0.1: the PostgreSQL + Redis run is skipped"; \
	fi

demo: install
	@ls models/*.tar.gz >/dev/null 2>&1 || $(MAKE) train
	BOT_DATABASE_URL=$(DEMO_DB) $(BIN)/python -m bot demo seed
	BOT_DATABASE_URL=$(DEMO_DB) $(BIN)/python -m bot serve --host 127.0.0.1 --port 8080

clean:
	rm -rf var/results .pytest_cache
