# Loaded by pytest before anything runs; the notebook kernels that nbval starts inherit this environment.
import os

os.environ.setdefault("CLORA_SMOKE", "1")                      # notebooks in their CI size
os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")    # no embedded plotly.js
