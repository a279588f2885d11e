"""``python -m workbench.cluster scheduler|executor``: the processes of a Ballista cluster
that runs the workbench's queries, its Rust functions included.

    python -m workbench.cluster scheduler --bind 0.0.0.0:50050 --advertise head.lan
    python -m workbench.cluster executor --scheduler head.lan:50050 --bind 0.0.0.0:50051 \\
        --advertise node1.lan --slots 4

Both run until stopped (Ctrl-C or SIGTERM). See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from workbench import extension

_USAGE_EXIT = 2


def _address(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 <= number < 65536:
        msg = f"{text!r} is not HOST:PORT"
        raise argparse.ArgumentTypeError(msg)
    return host.strip("[]"), number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.cluster", description=__doc__.split("\n\n")[0]
    )
    roles = parser.add_subparsers(dest="role", required=True)
    scheduler = roles.add_parser("scheduler", help="run the scheduler (gRPC and REST, one port)")
    scheduler.add_argument(
        "--bind", default="127.0.0.1:50050", help="HOST:PORT to listen on (127.0.0.1:50050)"
    )
    scheduler.add_argument("--advertise", help="the host name others reach this scheduler by")
    scheduler.add_argument("--log", default="warn", help="Ballista's log level on stderr (warn)")
    scheduler.add_argument(
        "--executor-timeout",
        type=int,
        default=20,
        help="seconds without a heartbeat before an executor is lost and its tasks rerun (20)",
    )
    executor = roles.add_parser("executor", help="run an executor for a scheduler")
    executor.add_argument("--scheduler", required=True, help="the scheduler's HOST:PORT")
    executor.add_argument(
        "--bind", default="127.0.0.1:50051", help="HOST:PORT for its Arrow Flight results"
    )
    executor.add_argument(
        "--grpc-port", type=int, help="port for the scheduler's calls (Flight port + 1)"
    )
    executor.add_argument(
        "--slots", type=int, default=os.cpu_count() or 1, help="tasks at once (the cores)"
    )
    executor.add_argument("--work-dir", help="where shuffle files go (a temporary directory)")
    executor.add_argument("--advertise", help="the host name the scheduler tells clients")
    executor.add_argument("--log", default="warn", help="Ballista's log level on stderr (warn)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    ext = extension.module()
    # The Rust side owns the process from here; SIGTERM and Ctrl-C stop it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        if args.role == "scheduler":
            host, port = _address(args.bind, 50050)
            print(
                f"workbench cluster: scheduler (Ballista {ext.BALLISTA_VERSION}) on {host}:{port}",
                flush=True,
            )
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            ext.run_scheduler(
                host, port, args.advertise, log=args.log, executor_timeout_s=args.executor_timeout
            )
        else:
            scheduler_host, scheduler_port = _address(args.scheduler, 50050)
            host, port = _address(args.bind, 50051)
            if args.slots < 1:
                parser.error("--slots must be at least 1")
            print(
                f"workbench cluster: executor (Ballista {ext.BALLISTA_VERSION}) on {host}:{port}"
                f" for {scheduler_host}:{scheduler_port}, {args.slots} slots",
                flush=True,
            )
            ext.run_executor(
                scheduler_host,
                scheduler_port,
                host,
                port,
                args.grpc_port if args.grpc_port is not None else port + 1,
                args.slots,
                args.work_dir,
                args.advertise,
                log=args.log,
            )
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    except ext.ClusterError as exc:
        print(f"workbench cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
