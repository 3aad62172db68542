"""The whole receiver's cost on a streamed account: CPU per emulated minute, tables per
vCPU, the delay from a delivery's ack to its values being queryable, peak memory; and two
replicas on one store against one alone (docs/performance.md)."""
