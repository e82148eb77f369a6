"""The vocabulary every floor shares: request and result types (`analysis`), errors,
settings, identity (roles, viewers, actors) and small value helpers. Imports nothing of
Headlight's; `db` may import it.
"""
