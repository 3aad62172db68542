"""The OTLP push of derived values to a collector."""
