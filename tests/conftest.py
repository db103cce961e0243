import os

os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
os.environ.setdefault("CLORA_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
