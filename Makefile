# TrustDesk: two commands. `make run` serves on http://localhost:3000; `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
TOOLS := .tools
UV := $(TOOLS)/bin/uv
APT_PACKAGES := redis-server chromium fonts-noto-color-emoji postgresql-15 dovecot-imapd

.PHONY: run test test-fast test-long lint bench bench-quick deps system-deps clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

deps: .venv/.synced

run: deps  ## serve the product on http://localhost:3000 (SQLite under ./data)
	.venv/bin/trustdesk run --port $${PORT:-3000}

# Debian packages the tests need (real Redis, PostgreSQL 15, Chromium, emoji font).
# Node.js and npm by command: a machine's own Node.js (e.g. NodeSource's, which bundles
# npm) is kept, and Debian's npm cannot be installed beside it.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: deps node_modules/.installed  ## Python: ruff, mypy, bandit; JavaScript: eslint (pinned)
	npx --no-install eslint src/trustdesk/web tests/js
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/bandit -q -r src --skip B101,B104,B105,B106  # skips explained in SECURITY.md

test: deps system-deps lint  ## the whole suite: JS units, API on SQLite and PostgreSQL, real time, browser
	node --test tests/js/
	.venv/bin/pytest -m "not long" -p no:cacheprovider

test-fast: deps
	.venv/bin/pytest -m "not long and not browser" -x -q

test-long: deps system-deps
	.venv/bin/pytest -m long -p no:cacheprovider

bench: deps system-deps  ## load benchmarks (~35 min); figures go to docs/benchmarks.md (ARGS=--quick)
	$(UV) sync --frozen --group bench --python $(PYTHON)
	.venv/bin/python -m bench.run $(ARGS)

bench-quick:  ## every benchmark target with its figure and ratio, in under 5 minutes
	$(MAKE) bench ARGS=--quick

clean:
	rm -rf .venv $(TOOLS) data node_modules

# Supply chain (see SECURITY.md, "Supply chain"): known vulnerabilities in every locked
# dependency (pip-audit on the lock file, all groups; --strict: a package that could not be
# checked fails too) and a static scan of src/ (bandit; the skipped checks are explained
# in SECURITY.md). PIP_AUDIT_ARGS passes more options, e.g. --vulnerability-service osv.
.PHONY: audit
audit: deps
	@req=$$(mktemp); trap 'rm -f $$req' EXIT; \
	$(UV) export --frozen --format requirements-txt --all-groups --no-emit-project -q -o $$req && \
	.venv/bin/pip-audit --strict --require-hashes --disable-pip --progress-spinner off \
	  -r $$req $(PIP_AUDIT_ARGS)
	.venv/bin/bandit -q -r src --skip B101,B104,B105,B106
