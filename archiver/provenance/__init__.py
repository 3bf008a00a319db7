"""Protocol code for provenance: canonical JSON, keys, signatures and record IDs. No transport."""
