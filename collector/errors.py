"""Base error of collector; the CLI turns these into one line (plus a tip) at the edge."""


class CollectorError(Exception):
    """Base of every error collector raises on purpose."""

    tip: str = ""

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        if tip:
            self.tip = tip
