"""A local Azure Functions host for this app, for machines without Azure Functions Core Tools.

`python -m devhost` serves the app on http://127.0.0.1:7071 the way Core Tools does; see `devhost.host`.
It is a development tool: it is not deployed (see .funcignore) and the app does not depend on it.
"""
