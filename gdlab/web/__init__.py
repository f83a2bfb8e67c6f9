"""The browser lab: a FastAPI server with a static page (vanilla JS + the bundled Plotly.js).

The lab adds no numerics of its own: every number it shows comes from the landscapes, optimizers,
schedules and run engine. ``gdlab serve`` starts it; :func:`create_app` builds the app for tests.
"""

from gdlab.web.app import create_app

__all__ = ["create_app"]
