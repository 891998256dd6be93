"""dunewatch edge agent: health and inventory of one device over MQTT (stdlib, psutil, paho)."""

# Kept in step with pyproject's version (a test checks); the zipapp has no package metadata.
__version__ = "0.1.0"
