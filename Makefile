# Two commands on a fresh machine:
#   make demo   set everything up, then run the main job on its embedded default
#   make test   set everything up, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The workspace's shared data (benchmark tables, CIFAR-10 JPEG copy), when present.
NORD_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export NORD_DATA

.PHONY: setup data browser demo test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed data

# Debian's Fashion-MNIST package (the four official IDX files); skipped where
# apt is not available or we are not root.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) \
		|| echo "warning: could not install dataset-fashion-mnist"; \
	else echo "note: install Debian's dataset-fashion-mnist for the Fashion-MNIST data"; fi

# Debian's headless Chromium for the browser tests of the HTML report and the
# dashboard (tests/analysis/test_browser.py skips without it); as for data.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
		|| echo "warning: could not install chromium; the browser tests will skip"; \
	else echo "note: install Debian's chromium to run the browser tests"; fi

demo: setup
	$(PY) -m nord demo

test: setup browser
	$(PY) -m pytest -q

bench: setup
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
