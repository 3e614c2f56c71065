"""spsnn's tests. Every test directory is a package, so that pytest puts the repository
root on ``sys.path`` and the shared helpers import as ``tests.helpers.<module>``."""
