"""The cloud-sync guard: finds sync folders in staff homes and blocks unapproved ones,
reversibly. rules/ says what a folder is and whether it is allowed; this package gathers the
facts (by file descriptor, never following a symlink) and carries out the decision."""
