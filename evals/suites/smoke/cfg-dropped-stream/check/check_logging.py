"""Hidden check: no DEBUG level left, everything else intact, and logging accepts the file."""

import configparser
import logging.config

config = configparser.ConfigParser(interpolation=None)
config.read("config/logging.ini", encoding="utf-8")
for section in ("logger_root", "logger_app", "handler_console"):
    assert config[section]["level"] == "INFO", (section, config[section]["level"])
assert config["logger_app"]["qualname"] == "app"
assert config["formatter_plain"]["format"].startswith("%(asctime)s")
logging.config.fileConfig("config/logging.ini", disable_existing_loggers=False)
assert logging.getLogger("app").level == logging.INFO
print("logging levels are INFO")
