"""Exit 0 when the venv holds the pinned packages in importable form (install.sh's skip test)."""
import importlib.metadata as metadata
import sys

PINNED = {"pie-server": "0.5.2", "pie-language-python": "0.5.2", "pie-client": "0.5.3"}

for dist, version in PINNED.items():
    try:
        found = metadata.version(dist)
    except metadata.PackageNotFoundError:
        sys.exit(f"{dist} is not installed")
    if found != version:
        sys.exit(f"{dist} is {found}, want {version}")

# Import what the scripts use, so a broken install is noticed here and not at boot.
import msgpack, numpy, tokenizers, websockets  # noqa: E401,F401
import pie_client, pie_language_python  # noqa: E401,F401
from pie import _engine  # noqa: F401  (the native server)
