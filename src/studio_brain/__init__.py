"""Studio Brain: the local-first control plane of a pottery studio's Studio OS v3."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("studio-brain")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

SERVICE_NAME = "studio-brain"
