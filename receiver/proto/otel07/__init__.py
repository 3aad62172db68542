"""OpenTelemetry 0.7.0 messages under the package name ``cwstream.otel07`` (generated)."""
