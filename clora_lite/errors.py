"""The kit's errors. Each message is one line naming the bad value and what is allowed (or how to get what is
missing); the command line prints it and exits with status 2. The bottom of the import graph, with env.py."""


class ConfigError(ValueError):
    """A bad setting, config file or run folder."""


class DatasetMissing(RuntimeError):
    """A dataset is not on disk and cannot be downloaded here; the message says how to get it."""


class DeviceUnavailable(ValueError):
    """The device asked for is not on this machine."""


class WeightsUnavailable(RuntimeError):
    """Pre-trained weights cannot be had here (no internet, file missing)."""


class NeedsTaskData(RuntimeError):
    """A learner that reads a task's inputs (InfLoRA) was trained without prepare_task being called."""


USER_ERRORS = (ConfigError, DatasetMissing, DeviceUnavailable, WeightsUnavailable)
