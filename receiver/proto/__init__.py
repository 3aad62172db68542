"""Protocol buffer definitions and their generated modules (see docs/design.md and `make proto`)."""
