"""Base error of firmware_db; the CLI turns these into one line (plus a tip) at the edge."""


class FirmwareDbError(Exception):
    """Base of every error firmware_db raises on purpose."""

    tip: str = ""

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        if tip:
            self.tip = tip
