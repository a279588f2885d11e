"""The session the magics share, and how a notebook configures it.

``%load_ext workbench`` builds it from ``RuntimeProfile()`` changed by
``$WORKBENCH_PROFILE`` (``key=value`` words, e.g. ``read_only=true
memory_limit=2GB``); ``%wb profile key=value ...`` replaces it with a new
session. All magics read the session through one holder, so they never
disagree about which session is current.
"""

from __future__ import annotations

import os

from workbench import RuntimeProfile, Session

PROFILE_VARIABLE = "WORKBENCH_PROFILE"


class SessionHolder:
    """Owns the magics' current Session; created on first use."""

    def __init__(self, session: Session | None = None) -> None:
        self._session = session

    @staticmethod
    def initial_profile() -> RuntimeProfile:
        """The default profile changed by ``$WORKBENCH_PROFILE``, if set."""
        return RuntimeProfile().with_settings(os.environ.get(PROFILE_VARIABLE, ""))

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.initial_profile().session()
        return self._session

    def use(self, session: Session) -> Session:
        """Make ``session`` the magics' session (one built in Python, say); returns the old one."""
        old, self._session = self.session, session
        return old

    def reconfigure(self, settings: str) -> tuple[Session, Session]:
        """Replace the session by one whose profile is changed by ``settings``: (old, new)."""
        old = self.session
        self._session = old.profile.with_settings(settings).session()
        return old, self._session
