"""Signed approval documents (GPG): built in a later issue."""
