"""SQL ingress: everything the workbench does to SQL text before DataFusion sees it.

SQLGlot's tokenizer is the gate: it knows strings, quoted identifiers and
comments, so splitting statements, finding ``{name}`` parameters and pointing
at the token an error names never trip over a ``;`` or ``{`` inside a literal.
The SQL text itself is passed to DataFusion unchanged, apart from ``{name}``
becoming the placeholder ``$name``; values are always bound, never spliced.
"""

from workbench.ingress.locate import locate_error
from workbench.ingress.params import bind_template
from workbench.ingress.statements import Statement, split_statements

__all__ = ["Statement", "bind_template", "locate_error", "split_statements"]
