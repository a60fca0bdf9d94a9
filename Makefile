# `make test` and `make demo` each create .venv on first use; only Python 3 is needed.
PYTHON ?= python3
# Real data: $TINYPROJ_DATA if set, else ../shared/datasets when it exists (the course
# machines, which have no internet), else datasets/ (downloaded on first use).
TINYPROJ_DATA ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),$(CURDIR)/datasets)
export TINYPROJ_DATA
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lessons clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m tinyproj.cli demo

lessons: $(STAMP)
	$(PY) -m tinyproj.cli lessons

clean:
	rm -rf $(VENV) .pytest_cache
