"""Privacy: consent per purpose, the audit log, data access and erasure (DESIGN §6)."""
