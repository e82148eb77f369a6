"""The vocabulary every floor shares; it imports nothing else of Headlight's, and `db` imports it too.

Request and result types (`analysis`: `AnalysisForm`, `AnalysisRequest`, `GenerationParams`,
the frozen `Analysis`, `ModelInfo`, `NextTokenStep`, `Timings`, `RunResult`, `SCHEMA_VERSION`);
the compact form's type (`compact.CompactAttention`); errors a user can cause (`errors`:
`HeadlightError` and its kinds, `StorageError`, `NotFoundError`, `PermissionDeniedError`,
`validation_message`); settings (`settings.Settings`, `get_settings`); identity (`identity`:
`Role`, `Viewer`, `Actor`, `ANONYMOUS`, `ANONYMOUS_ACTOR`); owned-record kinds and list rows
(`owned`: `RecordKind`, `LINK_KINDS`, `HistoryRow`, `SearchPage`, `Access`, `Download`); audit
filters and rows (`audit`); the preset widget-key schema (`presets`: `PresetScreen`,
`GENERATE`, `COMPARE`); and spreadsheet-safe CSV cells (`spreadsheet.csv_cell`).
"""
