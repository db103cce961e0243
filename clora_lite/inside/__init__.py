"""Looking inside a continual run: the analysis of its adapter snapshots (analysis.py), the accuracy and
forgetting plots (plots.py), the looking-inside figures (figures.py) and the notebook explorers (explorers.py,
which needs ipywidgets: import it by name)."""
