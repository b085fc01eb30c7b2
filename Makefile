# Quick start: `make run` and `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: run test test-slow bench docs install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# sionna-rt and sionna-no-rt both ship sionna/__init__.py; keep sionna-no-rt's lazy one (sionna-rt's
	# imports drjit on `import sionna`, and drjit loaded after TensorFlow aborts the process at exit)
	$(PY) -m pip install --quiet --force-reinstall --no-deps sionna-no-rt==1.2.2
	# drjit (Sionna RT) needs a system libLLVM (Debian: libllvm15 or later) or DRJIT_LIBLLVM_PATH
	@ldconfig -p | grep -q 'libLLVM' || test -n "$$DRJIT_LIBLLVM_PATH" || \
	  echo "warning: no libLLVM found: ray-traced CSI needs it (apt-get install libllvm15, or set DRJIT_LIBLLVM_PATH)"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/airtune run scenarios/quickstart.yaml --overwrite

test: $(STAMP)
	$(VENV)/bin/lint-imports    # the layer contracts of pyproject.toml; a broken one fails the target
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir $(CURDIR)/.site-check   # the docs build without a warning
	rm -rf .site-check
	$(PY) -m pytest -q

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict    # the documentation site into site/ (open site/index.html)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pytest -q -m benchmark -s tests/benchmarks

clean:
	rm -rf $(VENV) results site .pytest_cache .import_linter_cache
