"""User-facing errors. Their message is one line that names the problem (and the file)."""


class MetaLLMiXError(Exception):
    """Base class for every error a user can cause; the CLI prints it as one line, no traceback."""


class DatasetError(MetaLLMiXError):
    """A dataset could not be read or is not usable (missing, empty, one class, corrupt, ...)."""


class ConfigError(MetaLLMiXError):
    """A training config is outside the search space."""


class StoreError(MetaLLMiXError):
    """The run store could not be read or written."""


class TrainingError(MetaLLMiXError):
    """A training run could not be started."""
