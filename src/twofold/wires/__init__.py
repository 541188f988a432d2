"""Wire protocols. Each module knows one wire format and nothing of the others."""
