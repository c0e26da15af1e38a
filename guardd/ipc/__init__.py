"""The local socket between guardd and its clients (CLIs, tray)."""
