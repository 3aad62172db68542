"""Protocol buffer definitions and their generated modules (see README.md)."""
