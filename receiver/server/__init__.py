"""The composition root: the aiohttp app that wires the stages together (app.py) and how it is
served (site.py: TLS, signals, drain; connections.py: read deadlines and the connection limit)."""
