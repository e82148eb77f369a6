"""Owned records and their formats.

`transaction.unit_of_work` is the transaction boundary: services open it, it commits on
success, rolls back on any error and turns database failures into `StorageError`. `owned`
holds the table of record kinds (`KINDS`) and their one lifecycle: open, write, Trash,
restore, public switch, audit. Per kind: `analyses` (save, search, notes, exports, imports)
with `records` (a row to an `Analysis` through the codec), `export` and `offline_viewer`;
`comparisons`; `atlases`; `saved_datasets` and `datasets` (upload parsing, the probe,
tokenization statistics); `jobs`; `presets`; and `sharing` (share links). Also the live model
registry's rows (`model_registry`), the Models screen's actions (`model_admin`), the request
log (`request_log`) and its analytics (`model_analytics`).

Functions take keyword-only ``session`` and ``viewer``, ask `core.access.permissions` first and
never commit; the plain views services return (`SavedAnalysisView`, `DatasetView`, `JobView`,
`AtlasView`, ...) are defined here and built by `owned.view_of`.
"""
