# One command each: `make run` starts the whole service, `make test` runs the suite.
# Everything is installed into .venv from requirements-dev.lock: every package pinned with its
# hashes (--require-hashes), the build tools too, so nothing unpinned or altered is installed.
# requirements.lock is the runtime set alone (the container image). `make lock` rewrites both.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/cms_proto/*/v1/*.proto)
GEN_STAMP := cms_proto/.generated
export PYTHONPATH := $(CURDIR)

PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check
LOCK_VENV := .venv-lock
# One platform and Python for every lock, whoever runs `make lock`: the machines' and the image's.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu

.PHONY: venv protos assets run test bench lint lock lock-tool clean distclean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.lock Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes -r requirements-dev.lock
	# The project itself: no dependency resolved (all came from the lock above) and no build
	# isolation, so the locked setuptools and wheel build it rather than fresh unpinned ones.
	# compat: the checkout's root on the path, so packages generated after this install (cms_proto)
	# import from the console scripts too, as from `python -m`.
	$(PIP_INSTALL) --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	@touch $@

# Python code for the .proto contracts, generated into the cms_proto package (nothing else lives
# there) by scripts/gen_protos.py, which the container build runs too. Never edited, not committed.
protos: $(GEN_STAMP)

$(GEN_STAMP): $(STAMP) $(PROTOS) scripts/gen_protos.py
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) scripts/gen_protos.py
	@touch $@

# The caseworker console's browser assets from the npm registry: govuk-frontend (its CSS, fonts,
# images and JavaScript) and axe-core (the browser tests' accessibility check), exactly as
# package-lock.json pins them, integrity hashes checked by `npm ci`. Installed into the
# git-ignored node_modules beside the lock; services/console/assets.py finds them there.
# No package's install scripts run: these are static files.
FRONTEND := services/console/frontend
ASSETS_STAMP := $(FRONTEND)/node_modules/.installed

assets: $(ASSETS_STAMP)

$(ASSETS_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

run: protos assets
	$(PY) -m cms.stack

test: protos assets
	$(PY) -m pytest

bench: protos assets
	$(PY) -m bench

# The quality gate: ruff (errors, pyflakes, import order, bugbear, pyupgrade) and mypy over every
# package (the file list is [tool.mypy] files in pyproject.toml). Any finding fails the target.
# The formatter is not enforced; import order is.
lint: protos
	$(PY) -m ruff check .
	$(PY) -m mypy

# Rewrites both locks from pyproject.toml and requirements/build.in, keeping every pin that still
# fits (UPGRADE=1 takes the newest versions allowed). The dev lock is constrained by the runtime
# lock, so both name the same versions. The lock tool (uv) is itself installed by hash.
lock: $(LOCK_VENV)/bin/uv
	$(LOCK_VENV)/bin/uv pip compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" \
		pyproject.toml requirements/build.in -o requirements.lock
	$(LOCK_VENV)/bin/uv pip compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" \
		--extra test --extra lint -c requirements.lock pyproject.toml requirements/build.in -o requirements-dev.lock

$(LOCK_VENV)/bin/uv: requirements/lock-tool.txt
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/lock-tool.txt
	@touch $@

# Rewrites the lock tool's own pin (after changing its version in requirements/lock-tool.in).
lock-tool: $(LOCK_VENV)/bin/uv
	$(LOCK_VENV)/bin/uv pip compile $(LOCK_FLAGS) --custom-compile-command "make lock-tool" \
		requirements/lock-tool.in -o requirements/lock-tool.txt

clean:
	rm -rf cms_proto

distclean: clean
	rm -rf $(VENV) $(LOCK_VENV) .data $(FRONTEND)/node_modules
