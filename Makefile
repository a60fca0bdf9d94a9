# `make demo` and `make test` each create .venv on first use; only Python 3 is needed.
# Data: tinyproj itself looks in $TINYPROJ_DATA, else ../shared/datasets beside this
# checkout, else datasets/ (tinyproj/data/location.py); nothing to set here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# pytest-xdist: one test process per core (auto); WORKERS=0 runs the suite in this process.
# --durations=15: the slowest tests, printed at the end (where CI's time goes).
WORKERS ?= auto

.PHONY: test test-standin demo bench lessons course clean

# One stamp per set of extras: the demo needs only the package itself; the tests add pytest
# and hypothesis, and PyTorch (CPU) for the comparison tests; the benchmark adds PyTorch.
$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed-demo: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e ".[test,bench,course]"
	touch $@ $(VENV)/.installed-demo $(VENV)/.installed-bench

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@ $(VENV)/.installed-demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n $(WORKERS) --durations=15

# The GPU code path on the CPU (issue 11): the whole suite once more on the counting stand-in
# for the device (TINYPROJ_BACKEND=standin; tests/test_budgets.py asserts the launches, syncs
# and copies of a training step). The lessons run as scripts here (TINYPROJ_LESSONS_AS_SCRIPTS=1;
# tests/test_lessons.py gives them the NumPy reference kernels, lessons 08 and 09 aside);
# as notebooks, and the course website built from them, they run once, on NumPy, in `make test`.
test-standin: $(VENV)/.installed-test
	TINYPROJ_BACKEND=standin TINYPROJ_LESSONS_AS_SCRIPTS=1 $(PY) -m pytest -q -n $(WORKERS) \
		--durations=15 --ignore=tests/test_notebooks.py --ignore=tests/test_website.py

demo: $(VENV)/.installed-demo
	$(PY) -m tinyproj.cli demo

bench: $(VENV)/.installed-bench
	$(PY) -m tinyproj.cli bench

lessons: $(VENV)/.installed-demo
	$(PY) -m tinyproj.cli lessons

# The course website: README, lessons executed as notebooks (quick mode), CLI reference,
# results pages -> build/course-site/index.html (open it in a browser; docs/build_course.py).
$(VENV)/.installed-course: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e ".[course]"
	touch $@ $(VENV)/.installed-demo

course: $(VENV)/.installed-course
	NO_MKDOCS_2_WARNING=1 $(PY) docs/build_course.py

clean:
	rm -rf $(VENV) .pytest_cache
