"""Owned records and their formats: the transaction boundary, saved analyses, comparisons,
presets, datasets, share links, the live model registry's rows, the request log and the
export/import formats. Only this floor and `core.access` talk to `db`.
"""
