"""Hidden check: versions, license and changelog of the 1.5.0 release."""

import json

with open("package.json", encoding="utf-8") as f:
    package = json.load(f)
with open("app/manifest.json", encoding="utf-8") as f:
    manifest = json.load(f)
assert package["version"] == "1.5.0", package["version"]
assert package["license"] == "MIT", package.get("license")
assert package["scripts"]["test"] == "vitest run", "scripts must be kept"
assert manifest["version"] == "1.5.0", manifest["version"]
assert manifest["min_app_version"] == "1.2.0", "min_app_version is not the release version"

with open("CHANGELOG.md", encoding="utf-8") as f:
    headings = [line.strip() for line in f if line.startswith("## ")]
assert headings[:2] == ["## 1.5.0", "## 1.4.2"], headings
with open("CHANGELOG.md", encoding="utf-8") as f:
    assert "Added dark mode." in f.read()
print("release 1.5.0 is ready")
