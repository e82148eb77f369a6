"""Errors a user can cause. Each is a ValueError whose message says what to do."""

from pydantic import ValidationError


class HeadlightError(ValueError):
    """Base class: the page shows the message; the log keeps the detail."""


class UnknownModelError(HeadlightError):
    pass


class ModelUnavailableError(HeadlightError):
    pass


class ModelLoadError(HeadlightError):
    pass


class ModelDisabledError(HeadlightError):
    """An admin turned the model off: new analyses are refused, saved ones still open."""


class InputTooLongError(HeadlightError):
    def __init__(self, n_tokens: int, limit: int, label: str) -> None:
        super().__init__(
            f"The input is {n_tokens:,} tokens; {label} accepts at most {limit:,}. "
            "Shorten the text or lower 'max new tokens'."
        )
        self.n_tokens = n_tokens
        self.limit = limit


def validation_message(error: ValidationError) -> str:
    """Pydantic's errors as one readable sentence per problem, without its jargon."""
    lines = []
    for item in error.errors():
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        field = ".".join(str(part) for part in item.get("loc", ()) if part != "generation")
        lines.append(message if item.get("type") == "value_error" or not field else f"{field}: {message}")
    return " ".join(lines)


class StorageError(HeadlightError):
    """The database is unreachable or refused a change; nothing of the action was kept."""


class NotFoundError(HeadlightError):
    """No record with that id that this viewer may see."""


class PermissionDeniedError(HeadlightError):
    """The viewer may see the record but not change it."""
