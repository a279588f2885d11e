"""A display handle that a progress Watcher updates in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.display import display

from workbench.widgets.progress import progress_bundle

if TYPE_CHECKING:
    from workbench.progress import Progress


class ProgressView:
    """Shows the first report, then updates the same output; settles on the last."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, progress: Progress) -> None:
        bundle = progress_bundle(progress)
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
