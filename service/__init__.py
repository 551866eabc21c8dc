"""codeswift's HTTP service (`codeswift serve`): FastAPI around one shared engine.

`service.app.create_app(engine, ServiceConfig(...))` builds the app; `service.cli` adds the
`serve` subcommand. Importing this package is cheap (the CLI imports it on every run).
"""
