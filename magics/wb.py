"""``%wb``: session housekeeping (export bundles, replay them, list runs)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_magic, magics_class

from workbench import artifacts
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.result import Result
    from workbench.session import Session

_USAGE = (
    "usage: %wb export [RUN_ID ...] DIR   write an artifact bundle (default: the last run)\n"
    "       %wb replay DIR                re-run a bundle here and compare result hashes\n"
    "       %wb runs                      the runs of this session (the wb_runs table)"
)


@magics_class
class WbMagics(Magics):
    def __init__(self, shell: Any, session: Session) -> None:
        super().__init__(shell)
        self.session = session

    @line_magic
    def wb(self, line: str) -> Any:
        """Export, replay and list runs.

        %wb export [RUN_ID ...] DIR   write an artifact bundle (default: the last run)
        %wb replay DIR                re-run a bundle here and compare result hashes
        %wb runs                      the runs of this session (the wb_runs table)
        """
        words = shlex.split(line)
        command, args = (words[0], words[1:]) if words else ("", [])
        if command == "export" and args:
            path = artifacts.export(self.session, args[:-1], args[-1])
            print(f"bundle written: {path}")
            return path
        if command == "replay" and len(args) == 1:
            report = artifacts.replay(args[0], self.session)
            for run in report.runs:
                print(f"{run.run_id}: {run.rows} rows, result hash matches: {run.matches}")
            return report
        if command == "runs" and not args:
            result: Result = self.session.sql(
                "SELECT run_id, label, status, rows, elapsed_s, error FROM wb_runs "
                "ORDER BY started_at"
            )
            return result
        raise WorkbenchError(_USAGE)
