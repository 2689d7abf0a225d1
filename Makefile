# One command each: `make run` starts the whole service, `make test` runs the suite.
# Everything is installed into .venv from requirements.lock (pins) + pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/cms_proto/*/v1/*.proto)
GEN_STAMP := cms_proto/.generated
export PYTHONPATH := $(CURDIR)

.PHONY: venv protos run test bench lint clean distclean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	# compat: the checkout's root on the path, so packages generated after this install (cms_proto)
	# import from the console scripts too, as from `python -m`.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . --config-settings editable_mode=compat
	@touch $@

# Python code for the .proto contracts, generated into the cms_proto package (nothing else lives
# there) by scripts/gen_protos.py, which the container build runs too. Never edited, not committed.
protos: $(GEN_STAMP)

$(GEN_STAMP): $(STAMP) $(PROTOS) scripts/gen_protos.py
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) scripts/gen_protos.py
	@touch $@

run: protos
	$(PY) -m cms.stack

test: protos
	$(PY) -m pytest

bench: protos
	$(PY) -m bench

# The quality gate: ruff (errors, pyflakes, import order, bugbear, pyupgrade) and mypy over every
# package (the file list is [tool.mypy] files in pyproject.toml). Any finding fails the target.
# The formatter is not enforced; import order is.
lint: protos
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf cms_proto

distclean: clean
	rm -rf $(VENV) .data
