"""`kubelabel operator`: start Kopf with the operator's handlers and settings."""

from __future__ import annotations

import logging

from kubelabel_operator.settings import OperatorSettings, get_settings

HANDLERS_MODULE = "kubelabel_operator.handlers"


def kopf_args(
    namespaces: list[str] | None, all_namespaces: bool, settings: OperatorSettings, extra: list[str] | None = None
) -> list[str]:
    """Arguments of `kopf run` for this operator (also used by the tests' KopfRunner)."""
    args = ["run", "-m", HANDLERS_MODULE, f"--log-format={settings.log_format}"]
    if settings.verbose:
        args.append("--verbose")
    if settings.liveness_endpoint:
        args += ["--liveness", settings.liveness_endpoint]
    if settings.standalone:
        args.append("--standalone")
    elif settings.priority:
        args += ["--priority", str(settings.priority)]
    if namespaces:
        for ns in namespaces:
            args += ["--namespace", ns]
    else:
        # Nothing asked: watch every namespace (the manifests grant a ClusterRole for that).
        args.append("--all-namespaces")
    return args + [a for a in (extra or []) if a != "--"]


def run(namespaces: list[str] | None = None, all_namespaces: bool = False, extra_args: list[str] | None = None) -> int:
    from kopf.cli import main as kopf_main

    settings = get_settings()
    # Exact names only: a pattern (team-*) needs Kopf's namespace scan to find its namespaces.
    names = namespaces or []
    settings.namespaced = bool(names) and not all_namespaces and not any(set(n) & set("*?[!") for n in names)
    args = kopf_args(None if all_namespaces else namespaces, all_namespaces, settings, extra_args)
    logging.getLogger(__name__).debug("kopf %s", " ".join(args))
    try:
        kopf_main.main(args=args, prog_name="kubelabel operator", standalone_mode=False)
    except KeyboardInterrupt:
        return 130
    return 0
