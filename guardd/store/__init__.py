"""What the daemon remembers across restarts (SQLite, WAL)."""
