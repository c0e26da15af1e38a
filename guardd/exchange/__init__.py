"""The exchange with IT: a spool of documents (incidents; later requests and approvals)."""
