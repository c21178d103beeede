"""The errors a user can cause, each with a message meant to be shown as is.

The CLI turns a ``UserError`` into one line on stderr and exit code 2; any other exception is a bug
and keeps its traceback (exit 1). The web app shows the message of a ``UserError`` and an apology for
anything else.
"""


class UserError(ValueError):
    """Something the user gave (an input, a model folder, a manifest, an option) cannot be used."""


class InputError(UserError):
    """An input (picture, recording, text) that cannot be used; ``modality``: which one, once known."""

    def __init__(self, message: str, modality: str | None = None):
        super().__init__(message)
        self.modality = modality


class CheckpointError(UserError):
    """A model folder that cannot be loaded; the message names the offending field or file."""


class ManifestError(UserError):
    """A manifest CSV that cannot be read; the message names the file and row."""


class OptionError(UserError):
    """An option outside what it allows (a device, a training setting)."""


class HubError(UserError):
    """The Hugging Face Hub refused or could not take an upload (no token, no permission, no network)."""
