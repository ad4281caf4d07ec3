"""The transfer core: locations, backends, planning and the engine (built by later work).

It knows nothing of kopf, Kubernetes, Prometheus or the emulator; the CLI, the worker pods and
the operator all drive it.
"""
