"""guardd as a system service: readiness for systemd, the journal, and what it must not run beside."""
