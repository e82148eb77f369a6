"""Account commands for whoever runs the server; there is no default password anywhere.

    python -m core.service.admin_cli create-admin --username alice    # the first admin (or another)
    python -m core.service.admin_cli set-password --username bob      # e.g. after a lockout, or for "local"

The password is read from ``HEADLIGHT_ADMIN_PASSWORD`` when set, else from standard input
when it is not a terminal (first line), else prompted for twice without echo. It never
appears on the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from core.access import accounts, auth
from core.domain.errors import HeadlightError
from core.store.transaction import unit_of_work

FROM_ENVIRONMENT = "HEADLIGHT_ADMIN_PASSWORD"


def read_password(stdin: TextIO = sys.stdin) -> str:
    """The new password, from the environment, piped input or a prompt (see module docstring)."""
    from_env = os.environ.get(FROM_ENVIRONMENT)
    if from_env:
        return from_env
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat it: "):
        raise auth.AccountError("The two passwords differ; nothing was changed.")
    return first


def main(argv: Sequence[str] | None = None, *, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.service.admin_cli", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("create-admin", "create an admin account"),
        ("set-password", "set a user's password and lift any lock"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--username", required=True)
    args = parser.parse_args(argv)
    try:
        password = read_password(stdin)
        problem = auth.password_problem(password)
        if problem:
            raise auth.AccountError(f"{problem} ({auth.PASSWORD_RULES})")
        with unit_of_work() as session:
            if args.command == "create-admin":
                user = auth.create_admin(session=session, username=args.username, password=password)
                message = f"Created admin {user.username!r} (#{user.id}); sign in at the app's sidebar."
            else:
                user = accounts.set_password_from_console(
                    session=session, username=args.username, password=password
                )
                message = f"Set a new password for {user.username!r}; any lock is lifted."
    except HeadlightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
