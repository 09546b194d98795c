"""Where the server keeps its local files: var/ (or ANNOTATION_VAR_DIR)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ANNOTATION_VAR_DIR", BASE_DIR / "var"))
