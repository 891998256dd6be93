"""Base error of sbom; the CLI turns these into one line (plus a tip) at the edge."""


class SbomError(Exception):
    """Base of every error sbom raises on purpose."""

    tip: str = ""

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        if tip:
            self.tip = tip
