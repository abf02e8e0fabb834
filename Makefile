# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Debian packages of the real servers the integration tests talk to. Installed
# when missing and we are root with apt; otherwise their tests skip locally
# (and fail with CI=true).
DEB_PACKAGES := mosquitto influxdb

.PHONY: test demo lint bench clean system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (not root or no apt)"; fi; \
	fi

test: $(STAMP) system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP) system-packages
	$(PY) bench/bench_replay.py
	$(PY) bench/bench_kpi.py
	$(PY) bench/bench_backfill.py
	$(PY) bench/bench_influx.py

demo: $(STAMP)
	@echo "make demo is coming (simulator and dashboard issues): see README"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
