"""The `kubelabel` command line: one entrypoint for every process the image runs.

Each subcommand imports its implementation lazily so that, for example, the operator
never loads the web stack and `kubelabel serve` never loads Kopf.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from api_server.server import serve
    from api_server.settings import get_settings

    workers = args.workers if args.workers is not None else get_settings().workers
    return serve(host=args.host, port=args.port, migrate=not args.no_migrate, workers=workers)


def _worker(args: argparse.Namespace) -> int:
    from api_server.worker import main as worker_main

    return worker_main(burst=args.burst)


def _operator(args: argparse.Namespace) -> int:
    from kubelabel_operator.runner import run

    return run(namespaces=args.namespace, all_namespaces=args.all_namespaces, extra_args=args.kopf_args)


def _sync(args: argparse.Namespace) -> int:
    from api_server.storages.sync_job import main as sync_main

    return sync_main()


def _crds(args: argparse.Namespace) -> int:
    from kubelabel_operator.crdgen import write_crds

    for path in write_crds(args.out):
        print(path)
    return 0


def _model_server(args: argparse.Namespace) -> int:
    from kubelabel_model_server.app import serve as serve_model

    return serve_model(host=args.host, port=args.port)


def _migrate(args: argparse.Namespace) -> int:
    from api_server.db.migrate import upgrade
    from api_server.settings import get_settings

    upgrade(get_settings().resolved_database_url())
    return 0


def _backup(args: argparse.Namespace) -> int:
    from api_server.backup.cli import run_backup

    return run_backup(args.to, args.keep)


def _restore(args: argparse.Namespace) -> int:
    from api_server.backup.cli import run_restore

    return run_restore(args.source)


def _admin(args: argparse.Namespace) -> int:
    from api_server.users.cli import run as users_cli

    return users_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubelabel", description="Kubernetes-native data labeling platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the API server (and web page)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--no-migrate", action="store_true", help="do not apply database migrations at start")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes (default: $KUBELABEL_WORKERS or 1)",
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser("worker", help="run queued jobs")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=_worker)

    p = sub.add_parser("operator", help="run the Kubernetes operator")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    p.add_argument("kopf_args", nargs=argparse.REMAINDER, help="extra arguments passed to kopf after --")
    p.set_defaults(func=_operator)

    p = sub.add_parser("sync", help="run one storage sync, configured by env")
    p.set_defaults(func=_sync)

    p = sub.add_parser("crds", help="write the CustomResourceDefinition YAML generated from the models")
    p.add_argument("--out", default="crds/")
    p.set_defaults(func=_crds)

    p = sub.add_parser("model-server", help="run the bundled ML backend (text classification)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9090)
    p.set_defaults(func=_model_server)

    p = sub.add_parser("migrate", help="apply pending database migrations and exit")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("backup", help="back up the database to a bucket; prints the backup's URI last")
    p.add_argument(
        "--to", required=True, help="s3://bucket/prefix, gs://bucket/prefix or azure-blob://container/prefix"
    )
    p.add_argument("--keep", type=int, default=None, help="then delete complete backups but the newest N")
    p.set_defaults(func=_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty database")
    p.add_argument("--from", dest="source", required=True, help="the backup's URI, as `kubelabel backup` printed it")
    p.set_defaults(func=_restore)

    from api_server.users.cli import add_arguments as add_user_arguments

    add_user_arguments(sub, _admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
