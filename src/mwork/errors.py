"""User-facing errors: one line that names the problem and the fix.

Every input problem a user can cause (bad path, bad corpus, wrong model) raises `MworkError`.
The CLI prints `error: <message>` and exits with status 2 instead of a traceback.
"""


class MworkError(Exception):
    """An input or configuration problem the user can fix; the message is one line."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        super().__init__(" ".join(message.split()))
