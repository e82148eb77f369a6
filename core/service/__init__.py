"""One entry per user action.

`analysis_service.AnalysisService` (`submit`, the one entry of a Generate run; `run` for a
validated request; `layer_attention`; `recompute`) with `inference` (one analysis on a
`LanguageModel`), `cache`, `rate_limit` and `redaction`; `compare` (`submit_comparison`,
`run_comparison`). One module per screen whose functions each open one `unit_of_work` and
return plain views: `history`, `records` (delete, restore, publish, share links, open by link,
for every kind), `saved_comparisons`, `batch`, `presets`, `models_screen`, `analytics_screen`,
`audit_log`, `accounts`. Reads for the Metrics screen (`metrics_view`, `system`); the
composition root (`wiring`: `build_service`, `build_dispatcher`); and the process entry points
`celery_worker` and `admin_cli`.
"""
