"""The trainer in the browser (`tfdojo web`): FastAPI, server-rendered pages, the same progress store as the CLI.

``tfdojo.app.server.create_app(WebConfig(...))`` builds the ASGI app; this package imports nothing heavy itself,
so that `tfdojo --help` stays fast.
"""
