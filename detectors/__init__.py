"""Pure detection algorithms over pandas objects. No I/O, no database, no Streamlit.

The package root is the public surface; modules behind it are implementation.
"""
from detectors.result import Detection, Finding

__all__ = ["Detection", "Finding"]
