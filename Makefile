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
	rclone fuse3 qemu-system-x86 debootstrap cryptsetup-bin $(TRAY_PACKAGES)
# The tests run under umockdev's preload: a mock /sys and udev that pyudev and the daemon see.
UMOCKDEV := umockdev-wrapper
PYTEST_ARGS ?=

.PHONY: help deps venv test test-e2e lint typecheck unit demo bench clean install uninstall

help:
	@echo "make demo   - play the device-gate scenario on simulated hardware (umockdev)"
	@echo "make test   - lint, type-check and run every test (umockdev included)"
	@echo "make bench  - benchmarks, JSON in bench/results/"
	@echo "make venv   - create .venv with guardd and its test tools"
	@echo "make test-e2e - the QEMU tier alone (real kernel, real USB hot-plug; GUARDD_E2E=0 skips it in make test)"
	@echo "make install / make uninstall - guardd as a systemd service (root; see README)"

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
	TMPDIR=$${TMPDIR:-/tmp} $(UMOCKDEV) $(BIN)/python -m pytest --ignore=tests/e2e $(PYTEST_ARGS)
	@if [ "$${GUARDD_E2E:-1}" = 0 ]; then echo "QEMU tier skipped (GUARDD_E2E=0)"; \
	else $(MAKE) --no-print-directory test-e2e; fi

# The QEMU tier: a Debian guest (built once, cached in build/e2e) with guardd installed by
# `make install`, USB sticks hot-plugged through QMP. Not under umockdev: a real kernel.
test-e2e: venv
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# guardd as a service on this machine (root). The checkout's .venv stays the developers'.
install:
	$(PYTHON) packaging/install.py install

# KEEP_USB_CLOSED=1 leaves authorized_default=0 (new devices off until the next boot).
uninstall:
	$(PYTHON) packaging/install.py uninstall $(if $(filter 1,$(KEEP_USB_CLOSED)),--keep-usb-closed)

demo: venv
	$(UMOCKDEV) $(BIN)/python -m sim.demo

bench: venv
	$(UMOCKDEV) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache bench/results
