"""Operations: Prometheus metrics registered once per process and the `/metrics` server
(`metrics`), JSON logs with each request's context (`logs`: `configure_logging`,
`log_context`), this process's recent analyses and session heartbeats for the Metrics screen
(`telemetry.TELEMETRY`), and the input-drift statistics of the per-model analytics (`drift`:
token profiles, PSI, Jensen–Shannon, chance levels).
"""
