"""`kubelabel user …`: manage users and tokens from the command line (no server needed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from api_server.users.roles import Role


def add_arguments(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("user", help="manage users and API tokens")
    actions = p.add_subparsers(dest="user_command", required=True)
    create = actions.add_parser("create", help="create a user and print a new API token")
    create.add_argument("username")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.annotator.value)
    create.add_argument("--email", default="")
    token = actions.add_parser("token", help="issue a new API token for an existing user")
    token.add_argument("username")
    p.set_defaults(func=handler)


def run(args: argparse.Namespace) -> int:
    from api_server.common.errors import ApiError
    from api_server.db.migrate import upgrade
    from api_server.db.session import make_engine, make_session_factory
    from api_server.settings import get_settings
    from api_server.users import repository, service

    url = get_settings().resolved_database_url()
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        try:
            if args.user_command == "create":
                user = service.create_user(session, username=args.username, role=args.role, email=args.email)
            else:
                user = repository.user_by_username(session, args.username)
                if user is None:
                    print(f"error: no user named {args.username!r}")
                    return 2
            key = service.issue_token(session, user, name="cli")
            session.commit()
        except ApiError as exc:
            print(f"error: {exc.detail}")
            return 2
    engine.dispose()
    print(key)
    return 0
