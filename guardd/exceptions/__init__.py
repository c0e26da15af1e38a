"""Exceptions: staff requests, and IT's signed decisions about them."""
