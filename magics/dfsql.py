"""``%%dfsql``: SQL cells over the workbench session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, magics_class

from magics.flags import Flag, Takes, documented, parse
from magics.holder import SessionHolder
from magics.progress import ProgressView
from workbench.errors import ParameterError, QueryCancelledError, UsageError
from workbench.ingress import bind_template
from workbench.progress import Watcher

if TYPE_CHECKING:
    from workbench import Result, Session

FLAGS = (
    Flag("--out", Takes.WORD, "bind the streaming Result to NAME", short="-o", metavar="NAME"),
    Flag("--limit", Takes.COUNT, "rows to preview (default: 20)", metavar="N"),
    Flag(
        "--params",
        Takes.EXPRESSION,
        "a dict of $name parameters (a Python expression, e.g. {'x': 5} or a variable)",
        metavar="EXPR",
    ),
    Flag(
        "--label",
        Takes.WORD,
        "a label stored in the run record (quote it if spaced)",
        metavar="TEXT",
    ),
    Flag(
        "--engine",
        Takes.WORD,
        "run the query on: local, ballista:standalone or ballista://HOST:PORT",
        metavar="URL",
    ),
)


@magics_class
class WorkbenchMagics(Magics):
    """Magics bound to the workbench Session of a SessionHolder."""

    def __init__(self, shell: Any, holder: SessionHolder | None = None) -> None:
        super().__init__(shell)
        self.holder = holder or SessionHolder()

    @property
    def _ns(self) -> dict[str, Any]:
        assert self.shell is not None, "magics are registered on a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def session(self) -> Session:
        return self.holder.session

    @cell_magic
    @documented("%%dfsql", FLAGS)
    def dfsql(self, line: str, cell: str) -> Result:
        """Run the cell's SQL on the workbench session and preview the result.

        Several statements may be given; they run in order, each seeing the
        effects of those before it, and the last query is the result. Its rows
        stream: the preview reads only the first batches, and the Result (see
        -o) can page, stream to Parquet or hand everything to polars without
        running the query again.

        {name} in the SQL binds the Python variable `name` as a parameter
        ($name placeholder); values are bound, never pasted into the SQL.

        Examples::

            %%dfsql -o top --limit 5
            SELECT o_orderkey, o_totalprice FROM orders
            WHERE o_totalprice > {threshold} ORDER BY 2 DESC

        --engine runs this cell's query on a Ballista cluster (see `python -m
        workbench.cluster`); the session keeps the catalog and runs DDL itself.
        """
        args, _ = parse(line, FLAGS, magic="%%dfsql")
        sql, params = bind_template(cell, self._ns)
        if args["out"] is not None and not args["out"].isidentifier():
            msg = f"-o/--out takes a Python variable name, not {args['out']!r}"
            raise UsageError(msg)
        if args["params"]:
            try:
                extra = eval(args["params"], self._ns)  # noqa: S307  (the user's own notebook expression)
            except Exception as exc:  # noqa: BLE001  (any error of the user's expression)
                msg = f"--params {args['params']}: {type(exc).__name__}: {exc}"
                raise UsageError(msg) from None
            if not isinstance(extra, Mapping):
                msg = f"--params {args['params']} is a {type(extra).__name__}; pass a dict"
                raise ParameterError(msg)
            params = {**params, **extra}
        result = self.session.sql(sql, params, label=args["label"], engine=args["engine"])
        if args["limit"] is not None:
            result.preview_rows = args["limit"]
        if args["out"]:
            self._ns[args["out"]] = result
        try:
            # Read the preview here, not in the display hook, so Ctrl-C lands in
            # the magic and becomes a short message instead of a formatter traceback.
            with Watcher(result, ProgressView()):
                result.more_than(result.preview_rows)
        except KeyboardInterrupt:
            raise QueryCancelledError(result.run.error or "query interrupted") from None
        return result
