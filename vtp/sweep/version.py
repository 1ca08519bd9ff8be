"""The code version in every run key: computed in the job contract (`vtp.jobs.version`), because a
worker compares it with the checkout it runs from; the engine reads it from there."""

from vtp.jobs.version import PACKAGE_ROOT, RESULT_CODE, code_version, source_hash

__all__ = ["PACKAGE_ROOT", "RESULT_CODE", "code_version", "source_hash"]
