"""Who may do what: password auth and login policy, accounts, the one permission check
(Python and SQL forms), the audit log and secret handling.
"""
