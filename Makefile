# 社区暖心助手 — developer entry points. A new user needs only `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/lock.txt | sha1sum | cut -c1-12)
DEMO_DB ?= sqlite+aiosqlite:///var/demo.db

# Rasa phones home by default; this project never calls the internet.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install train validate test-stories test check demo serve clean

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

test: check
	$(BIN)/python -m pytest

demo: install
	@ls models/*.tar.gz >/dev/null 2>&1 || $(MAKE) train
	BOT_DATABASE_URL=$(DEMO_DB) $(BIN)/python -m bot demo seed
	BOT_DATABASE_URL=$(DEMO_DB) $(BIN)/python -m bot serve --host 127.0.0.1 --port 8080

clean:
	rm -rf var/results .pytest_cache
