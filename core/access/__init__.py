"""Who may do what: password policy, bcrypt and the login gate's rules without Streamlit
(`auth`), account administration for the Admin screen and the console (`accounts`), the one
permission check, in Python and as SQL WHERE clauses (`permissions`), the audit log, written
in the transaction of the change it describes (`audit`), secrets and the production check
(`secrets`), and which screens a visitor is offered (`navigation`). Functions take a
keyword-only ``session`` and never commit.
"""
