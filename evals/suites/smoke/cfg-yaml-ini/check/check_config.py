"""Hidden check: the CI matrix and the flake8 settings."""

import configparser
import re

with open(".github/workflows/ci.yml", encoding="utf-8") as f:
    workflow = f.read()
try:
    import yaml  # optional: parse the workflow for real when PyYAML is installed
except ImportError:
    match = re.search(r"python-version: \[(.*)\]", workflow)
    assert match, "python-version matrix not found"
    versions = [v.strip().strip("\"'") for v in match.group(1).split(",")]
else:
    versions = [str(v) for v in yaml.safe_load(workflow)["jobs"]["test"]["strategy"]["matrix"]["python-version"]]
assert versions == ["3.10", "3.11", "3.12"], versions

config = configparser.ConfigParser()
config.read("setup.cfg", encoding="utf-8")
assert config["flake8"]["max-line-length"] == "100", config["flake8"]["max-line-length"]
assert config["flake8"]["exclude"] == ".git,build"
assert config["options"]["python_requires"] == ">=3.10"
print("ci matrix and flake8 settings are right")
