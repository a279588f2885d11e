"""``%wb``: session housekeeping (profile, export bundles, replay them, list runs)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_magic, magics_class

from workbench import artifacts
from workbench.errors import UsageError

if TYPE_CHECKING:
    from magics.holder import SessionHolder
    from workbench.result import Result

_USAGE = (
    "usage: %wb profile [KEY=VALUE ...]    show the session's profile, or start a new\n"
    "                                      session with these changes, e.g.\n"
    "                                      %wb profile read_only=true memory_limit=2GB\n"
    "       %wb export [RUN_ID ...] DIR    write an artifact bundle (default: the last run)\n"
    "       %wb replay DIR                 re-run a bundle here and compare result hashes\n"
    "       %wb runs                       the runs of this session (the wb_runs table)\n"
    "       %wb tables                     every table: format, location, partitions,\n"
    "                                      how and when it was registered (wb_tables)\n"
    "       %wb describe NAME              a table's columns, partitions, counts and the\n"
    "                                      DDL that registers it again\n"
    "       %wb functions [ORIGIN]         every function with its origin (built-in, Rust,\n"
    "                                      Python, SQL macro) and signatures (wb_functions)\n"
    "       %wb cache                      the extension's caches: entries, bytes, hits,\n"
    "                                      misses, largest entries, and the cache settings\n"
    "       %wb config [all]               the profile, and the DataFusion settings that\n"
    "                                      differ from DataFusion's defaults (all: every one)"
)


@magics_class
class WbMagics(Magics):
    __doc__ = _USAGE

    def __init__(self, shell: Any, holder: SessionHolder) -> None:
        super().__init__(shell)
        self.holder = holder

    @line_magic
    def wb(self, line: str) -> Any:
        """Session profile, bundles and runs (see the usage below)."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%wb: {exc}\n{_USAGE}") from exc
        command, args = (words[0], words[1:]) if words else ("", [])
        if command == "describe" and args:
            # The name as typed: shlex would take the quotes off "Events".
            args = [line.strip().split(None, 1)[1].strip()]
        flags = [w for w in args if w.startswith("--")]
        if flags:
            raise UsageError(f"%wb {command}: unknown flag {flags[0]}\n{_USAGE}")
        if command == "profile":
            return self._profile(" ".join(shlex.quote(a) for a in args))
        session = self.holder.session
        if command == "export" and args:
            path = artifacts.export(session, args[:-1], args[-1])
            print(f"bundle written: {path}")
            return path
        if command == "replay" and len(args) == 1:
            report = artifacts.replay(args[0], session)
            for run in report.runs:
                print(run.describe())
            return report
        if command == "runs" and not args:
            result: Result = session.sql(
                "SELECT run_id, label, status, rows, elapsed_s, error FROM wb_runs "
                "ORDER BY started_at"
            )
            return result
        shown = self._catalog(session, command, args)
        if shown is None:
            raise UsageError(_USAGE)
        return shown

    @staticmethod
    def _catalog(session: Any, command: str, args: list[str]) -> Any:
        """``%wb tables``, ``config``, ``describe``, ``cache``, ``functions`` (None: others)."""
        fixed = {
            ("tables",): "SELECT * FROM wb_tables ORDER BY name",
            # The profile and DataFusion's settings; without "all", only what differs.
            ("config",): "SELECT * FROM wb_config WHERE differs IS NOT FALSE ORDER BY name",
            ("config", "all"): "SELECT * FROM wb_config ORDER BY name",
            ("functions",): "SELECT * FROM wb_functions ORDER BY name, kind",
        }
        query = fixed.get((command, *args))
        if query is not None:
            return session.sql(query)
        if command == "describe" and len(args) == 1:
            from workbench import registry

            return registry.describe(session, args[0])
        if command == "cache" and not args:
            from workbench import caches

            return caches.panel(session)
        if command == "functions" and len(args) == 1:
            return session.sql(
                "SELECT * FROM wb_functions WHERE origin = $origin ORDER BY name, kind",
                params={"origin": args[0]},
            )
        return None

    def _profile(self, settings: str) -> Any:
        if not settings:
            return self.holder.session.profile
        old, new = self.holder.reconfigure(settings)
        assert self.shell is not None
        if self.shell.user_ns.get("wb") is old:
            self.shell.user_ns["wb"] = new
        left = [t for t in old.tables() if not t.startswith("wb_")]
        note = (
            f"; tables of the old session are not carried over: {', '.join(left)}" if left else ""
        )
        print(f"new session {new.session_id} with {settings}{note}")
        return new.profile
