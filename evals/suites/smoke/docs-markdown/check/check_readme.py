"""Hidden check: README links resolve, region filled in, License section last."""

import os
import re

with open("README.md", encoding="utf-8") as f:
    readme = f.read()

for target in re.findall(r"\]\(([^)#]+)\)", readme):
    if "://" not in target:
        assert os.path.exists(target), f"broken link: {target}"
assert "docs/install.md" in readme, "installation link missing"
assert "REGION_TBD" not in readme, "placeholder left"
assert "eu-west-3" in readme, "region missing"
headings = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
assert headings[-1] == "License", headings
license_section = readme.split("## License", 1)[1]
assert "MIT" in license_section and "(LICENSE)" in license_section, license_section
print("README is tidy")
