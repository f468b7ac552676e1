"""Canonical commerce event records and the SQL migrations: the product's contract."""
