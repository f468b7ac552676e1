"""Platform adapters: one module per marketplace behind the small interface in `base`."""
