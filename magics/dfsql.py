"""``%%dfsql``: SQL cells over the workbench session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from magics.progress import ProgressView
from workbench import Result, RuntimeProfile, Session
from workbench.errors import ParameterError, QueryCancelledError
from workbench.ingress import bind_template
from workbench.progress import Watcher


@magics_class
class WorkbenchMagics(Magics):
    """Magics bound to one workbench Session (created on first use)."""

    def __init__(self, shell: Any, session: Session | None = None) -> None:
        super().__init__(shell)
        self._session = session

    @property
    def _ns(self) -> dict[str, Any]:
        assert self.shell is not None, "magics are registered on a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = RuntimeProfile().session()
        return self._session

    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="bind the streaming Result to NAME")
    @argument("--limit", type=int, metavar="N", help="rows to preview (default: 20)")
    @argument(
        "--params",
        metavar="EXPR",
        help="a dict of $name parameters (a Python expression, e.g. a variable name)",
    )
    @argument("--label", metavar="TEXT", help="a label stored in the run record")
    @cell_magic
    def dfsql(self, line: str, cell: str) -> Result:
        """Run the cell's SQL on the workbench session and preview the result.

        Several statements may be given; DDL, DML and SET run in order and the
        last query is the result. Its rows stream: the preview reads only the
        first batches, and the Result (see -o) can page, stream to Parquet or
        hand everything to polars without running the query again.

        {name} in the SQL binds the Python variable `name` as a parameter
        ($name placeholder); values are bound, never pasted into the SQL.

        Examples::

            %%dfsql -o top --limit 5
            SELECT o_orderkey, o_totalprice FROM orders
            WHERE o_totalprice > {threshold} ORDER BY 2 DESC
        """
        args = parse_argstring(self.dfsql, line)
        sql, params = bind_template(cell, self._ns)
        if args.params:
            extra = eval(args.params, self._ns)  # noqa: S307  (the user's own notebook expression)
            if not isinstance(extra, Mapping):
                msg = f"--params {args.params} is a {type(extra).__name__}; pass a dict"
                raise ParameterError(msg)
            params = {**params, **extra}
        result = self.session.sql(sql, params, label=args.label)
        if args.limit is not None:
            result.preview_rows = args.limit
        if args.out:
            self._ns[args.out] = result
        try:
            # Read the preview here, not in the display hook, so Ctrl-C lands in
            # the magic and becomes a short message instead of a formatter traceback.
            with Watcher(result, ProgressView()):
                result.more_than(result.preview_rows)
        except KeyboardInterrupt:
            raise QueryCancelledError(result.run.error or "query interrupted") from None
        return result
