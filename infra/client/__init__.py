"""Clients of the public API: the `render` CLI and the reference web app (`web/`).

Nothing here imports the service's own code: both speak only HTTP, as any team's frontend would.
It lives outside `functions/` because that folder is deployed as every Lambda's code.
"""
