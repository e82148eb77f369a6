"""Operations: Prometheus metrics, JSON logs, in-process telemetry for the Metrics screen
and the input-drift statistics of the per-model analytics.
"""
