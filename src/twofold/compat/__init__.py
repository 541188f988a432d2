"""Breaking changes between two versions of an API's contracts (``twofold check``).

The OpenAPI side is compared here (:mod:`twofold.compat.openapi`), the
protobuf side by ``buf breaking`` (:mod:`twofold.compat.protobuf`); both
report :class:`Finding` s.
"""

from twofold.compat.report import ContractError, Finding

__all__ = ["ContractError", "Finding"]
