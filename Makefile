# `make demo` and `make test` each create .venv on first use; only Python 3 is needed.
# Data: tinyproj itself looks in $TINYPROJ_DATA, else ../shared/datasets beside this
# checkout, else datasets/ (tinyproj/data/location.py); nothing to set here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

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
	$(PY) -m pytest -q

# The GPU code path on the CPU (issue 11): the same tests on the counting stand-in for the
# device (TINYPROJ_BACKEND=standin), over the files that cover the framework's array code;
# tests/test_budgets.py asserts the launches, syncs and copies of a training step.
STANDIN_TESTS := tests/test_standin.py tests/test_budgets.py tests/test_tensor.py \
	tests/test_functional.py tests/test_nn.py tests/test_optim.py tests/test_clipping.py \
	tests/test_projections.py tests/test_algorithm1.py tests/test_models.py \
	tests/test_kernels.py tests/test_against_torch.py tests/test_training.py \
	tests/test_robustness.py tests/test_walking_noise.py tests/test_walk_protocol.py \
	tests/test_runs.py tests/test_kernels_fused.py tests/test_kernels_stochastic.py \
	tests/test_augment.py tests/test_bn_estimate.py tests/test_exercises.py \
	tests/test_debugger.py tests/test_lessons.py

# The lessons run as scripts here (TINYPROJ_LESSONS_AS_SCRIPTS=1): as notebooks they are run
# once, on NumPy, by `make test` (tests/test_notebooks.py).
test-standin: $(VENV)/.installed-test
	TINYPROJ_BACKEND=standin TINYPROJ_LESSONS_AS_SCRIPTS=1 $(PY) -m pytest -q $(STANDIN_TESTS)

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
