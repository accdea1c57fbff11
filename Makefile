# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: on these machines 2.13.0 is a local CPU build (any other spec pulls CUDA wheels).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,monai,torchio]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/medaug demo --out demo-output

# lint (ruff: pyflakes, bugbear, import order, pyupgrade) and types (mypy on data/ and engine/) first, then the suite
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs/examples docs/gen_pages.py
	$(BIN)/mypy
	sh tests/preview/ensure_chromium.sh
	$(BIN)/python -m pytest

# The documentation site (mkdocs.yml), offline and strict: a broken link, a missing reference or a docstring
# warning fails. The gallery's pictures are made now, on the shipped sample data. Output: build/site/.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

# Long fuzz run of the readers (NIfTI, DICOM, PNG, configs): FUZZ_EXAMPLES random inputs per target.
FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	MEDAUG_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider \
		--durations=0 --hypothesis-show-statistics

bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/run.py --write-docs

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
