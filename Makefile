# guardd: everything the project needs is installed from here (Debian packages with apt-get,
# Python packages into .venv); nothing by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The staff tray (GTK / AppIndicator through PyGObject, notifications on the session bus) and
# what its real-window tests drive: a virtual screen, a tray host, a notification daemon.
TRAY_PACKAGES := gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 dbus dbus-x11 \
	fonts-dejavu-core adwaita-icon-theme desktop-file-utils xvfb trayer xdotool imagemagick dunst
APT_PACKAGES := python3 python3-venv python3-dev gcc pkg-config libgirepository1.0-dev \
	libcairo2-dev umockdev libumockdev0 gir1.2-umockdev-1.0 util-linux e2fsprogs \
	clamav-daemon clamdscan fusefat exfat-fuse exfatprogs dosfstools zip gpg gpg-agent acl \
	rclone fuse3 $(TRAY_PACKAGES)
# The tests run under umockdev's preload: a mock /sys and udev that pyudev and the daemon see.
UMOCKDEV := umockdev-wrapper
PYTEST_ARGS ?=

.PHONY: help deps venv test lint typecheck unit demo bench clean

help:
	@echo "make demo   - play the device-gate scenario on simulated hardware (umockdev)"
	@echo "make test   - lint, type-check and run every test (umockdev included)"
	@echo "make bench  - benchmarks, JSON in bench/results/"
	@echo "make venv   - create .venv with guardd and its test tools"

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: venv lint typecheck
	TMPDIR=$${TMPDIR:-/tmp} $(UMOCKDEV) $(BIN)/python -m pytest $(PYTEST_ARGS)

demo: venv
	$(UMOCKDEV) $(BIN)/python -m sim.demo

bench: venv
	$(UMOCKDEV) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache bench/results
