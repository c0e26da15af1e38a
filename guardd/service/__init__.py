"""guardd as a system service: readiness, the journal, and what it must not run beside."""
