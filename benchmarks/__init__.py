"""`make bench`: speed and memory of the receiver, printed as a table (see docs/performance.md)."""
