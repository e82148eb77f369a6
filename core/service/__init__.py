"""Services: one call per user action. The analysis service (validation, limits, cache,
model, request log), Compare, batch work, model administration, analytics and the
health of the process. The UI and the API call these and nothing below them.
"""
