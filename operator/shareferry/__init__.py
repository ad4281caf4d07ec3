"""ShareFerry: move data in and out of Azure Files (and Blob) from Kubernetes.

Sub-packages: ``core`` (the transfer core), ``cli`` (the ``shareferry`` command), ``emulator``
(an Azure Files REST emulator the real SDK and AzCopy talk to).
"""

__version__ = "0.1.0"
