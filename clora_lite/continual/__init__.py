"""Running a method over a task stream: the settings (config.py) and named presets, the loop (loop.py), the run
folder with its checkpoints, snapshots and resume (run_folder.py), and the metrics."""
from .config import Config, ConfigError, load_benchmark
from .loop import run
from .run_folder import RunFolder, load_learner
