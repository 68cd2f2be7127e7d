"""`kubelabel user …` and `kubelabel member …`: users, tokens and memberships from the command line.

They work on the database directly (DATABASE_URL, or the SQLite file under KUBELABEL_DATA_DIR),
so they need no server and no token: whoever can run them owns the database anyway.

    kubelabel user create alice --role annotator      prints alice's first API token
    kubelabel user create alice --password            ... and asks for her password (or --password-stdin)
    kubelabel user passwd alice [--password-stdin]    sets her password, ends her signed-in sessions
    kubelabel user token alice [--name ci]            prints a new token for alice
    kubelabel user list | tokens alice | revoke alice 3 | set-role alice manager | deactivate alice
    kubelabel member add 1 alice annotator            adds alice to project 1 (or changes her role)
    kubelabel member list 1 | remove 1 alice
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from api_server.users.roles import PROJECT_ROLES, Role


def add_arguments(sub: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("user", help="manage users and API tokens")
    actions = p.add_subparsers(dest="user_command", required=True)
    create = actions.add_parser("create", help="create a user and print a new API token")
    create.add_argument("username")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.annotator.value)
    create.add_argument("--email", default="")
    _password_arguments(create, optional=True)
    passwd = actions.add_parser("passwd", help="set a user's password (prompted; ends their signed-in sessions)")
    passwd.add_argument("username")
    _password_arguments(passwd, optional=False)
    token = actions.add_parser("token", help="issue a new API token for an existing user (printed once)")
    token.add_argument("username")
    token.add_argument("--name", default="cli", help="a label for the token")
    actions.add_parser("list", help="list users")
    tokens = actions.add_parser("tokens", help="list a user's tokens (ids, names, prefixes)")
    tokens.add_argument("username")
    revoke = actions.add_parser("revoke", help="revoke one of a user's tokens")
    revoke.add_argument("username")
    revoke.add_argument("token_id", type=int)
    set_role = actions.add_parser("set-role", help="change a user's organisation role")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=[r.value for r in Role])
    for name, text in (("deactivate", "block a user (tokens stop working)"), ("activate", "unblock a user")):
        actions.add_parser(name, help=text).add_argument("username")
    p.set_defaults(func=handler)

    m = sub.add_parser("member", help="manage project memberships and roles")
    member_actions = m.add_subparsers(dest="member_command", required=True)
    add = member_actions.add_parser("add", help="add a user to a project with a role (or change the role)")
    add.add_argument("project", type=int)
    add.add_argument("username")
    add.add_argument("role", choices=[r.value for r in PROJECT_ROLES])
    listing = member_actions.add_parser("list", help="list a project's members")
    listing.add_argument("project", type=int)
    remove = member_actions.add_parser("remove", help="remove a user from a project")
    remove.add_argument("project", type=int)
    remove.add_argument("username")
    m.set_defaults(func=handler)


_PROMPT = object()  # `--password` without a value: ask for it


def _password_arguments(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password",
        nargs="?",
        const=_PROMPT,
        default=None if optional else _PROMPT,
        help="set a password: prompted for without a value (a value given here is visible to other "
        "users of the machine, in ps and shell history)",
    )
    group.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")


def read_password(args: argparse.Namespace) -> str | None:
    """The password the arguments ask for (prompted twice, or from stdin), or None."""
    import getpass

    from api_server.common.errors import BadRequest

    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    given = getattr(args, "password", None)
    if given is None:
        return None
    if given is not _PROMPT:
        print(
            "warning: a password given on the command line is visible to other users (ps, shell history); "
            "prefer the prompt or --password-stdin",
            file=sys.stderr,
        )
        return str(given)
    first = getpass.getpass(f"Password for {args.username}: ")
    if getpass.getpass("Again: ") != first:
        raise BadRequest("the passwords do not match")
    return first


def run(args: argparse.Namespace) -> int:
    from api_server.common.errors import ApiError
    from api_server.db.migrate import upgrade
    from api_server.db.session import make_engine, make_session_factory
    from api_server.settings import get_settings

    url = get_settings().resolved_database_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            try:
                if args.command == "member":
                    return _member(session, args)
                return _user(session, args)
            except ApiError as exc:
                session.rollback()
                print(f"error: {exc.detail}")
                return 2
    finally:
        engine.dispose()


def _find(session: Any, username: str) -> Any:
    from api_server.common.errors import NotFound
    from api_server.users import repository

    user = repository.user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _user(session: Any, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api_server.db.models import User
    from api_server.users import repository, service

    cmd = args.user_command
    out: list[str] = []
    if cmd == "create":
        password = read_password(args)
        user = service.create_user(session, username=args.username, role=args.role, email=args.email, password=password)
        out.append(service.issue_token(session, user, name="cli"))
    elif cmd == "passwd":
        service.set_password(session, _find(session, args.username), read_password(args))
        out.append(f"password of {args.username} set; their signed-in sessions have ended")
    elif cmd == "token":
        out.append(service.issue_token(session, _find(session, args.username), name=args.name))
    elif cmd == "list":
        for u in session.scalars(select(User).order_by(User.id)):
            out.append(f"{u.id}\t{u.username}\t{u.role}\t{'active' if u.is_active else 'inactive'}\t{u.email}")
    elif cmd == "tokens":
        for t in repository.tokens_of(session, _find(session, args.username).id):
            used = t.last_used_at.isoformat() if t.last_used_at else "-"
            out.append(f"{t.id}\t{t.name}\t{t.prefix}…\tcreated {t.created_at.isoformat()}\tlast used {used}")
    elif cmd == "revoke":
        service.revoke_token(session, _find(session, args.username).id, args.token_id)
        out.append(f"revoked token {args.token_id} of {args.username}")
    elif cmd == "set-role":
        _find(session, args.username).role = Role(args.role).value
        out.append(f"{args.username} is now {args.role}")
    elif cmd in {"deactivate", "activate"}:
        _find(session, args.username).is_active = cmd == "activate"
        out.append(f"{args.username} is {cmd}d")
    session.commit()  # before printing: a printed token always exists
    for line in out:
        print(line)
    return 0


def _member(session: Any, args: argparse.Namespace) -> int:
    from api_server.db.models import User
    from api_server.members import service

    # The command line acts with the database owner's authority: an organisation admin.
    actor = User(id=0, username="kubelabel-cli", role=Role.admin.value, is_active=True)
    cmd = args.member_command
    if cmd == "add":
        user = _find(session, args.username)
        member = service.upsert_member(session, actor, args.project, user.id, args.role)
        print(f"{member.username} is {member.role} in project {args.project}")
    elif cmd == "list":
        for m in service.list_members(session, actor, args.project):
            print(f"{m.user}\t{m.username}\t{m.role}")
    elif cmd == "remove":
        service.remove_member(session, actor, args.project, _find(session, args.username).id)
        print(f"{args.username} removed from project {args.project}")
    return 0
