"""Who did something: a user, an API token acting as its user, or the system (scheduler, CLI, a task)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The author of an action, as services receive it and the audit log records it.

    `kind` is "user", "token" (an API token acting as `user_id`), "system" (scheduler, workers, commands run
    by an operator) or "anonymous" (a failed login: `label` holds the username that was tried).
    """

    kind: str
    user_id: int | None = None
    token_id: int | None = None
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        """The platform itself (scheduler, worker, an operator's command without `--as`)."""
        return cls(kind="system", label=label)

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        """A person (or service account) acting directly, e.g. through the UI or a command with `--as`."""
        return cls(kind="user", user_id=user.pk, label=user.get_username())

    @classmethod
    def anonymous(cls, label: str = "") -> Actor:
        """Someone not (yet) authenticated: `label` is what they claimed to be."""
        return cls(kind="anonymous", label=label)

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """The actor behind an HTTP request: its API token, else its logged-in user, else anonymous."""
        token = getattr(request, "api_token", None)
        if token is not None:
            return cls(
                kind="token",
                user_id=token.user_id,
                token_id=token.pk,
                label=f"{token.user.get_username()} (token {token.prefix})",
            )
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls.for_user(user)
        return cls.anonymous()

    @property
    def is_system(self) -> bool:
        return self.kind == "system"
