"""Settings of the web app; the environment overrides the defaults."""

import os

DEFAULTS = {
    "host": "0.0.0.0",
    "port": 8080,
    "debug": True,
}


def load(environ=os.environ):
    settings = dict(DEFAULTS)
    if "APP_PORT" in environ:
        settings["port"] = int(environ["APP_PORT"])
    if "APP_DEBUG" in environ:
        settings["debug"] = environ["APP_DEBUG"] == "1"
    return settings
