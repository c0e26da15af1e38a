"""The QEMU tier: guardd installed in a Debian guest, real USB hot-plug."""
