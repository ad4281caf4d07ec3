"""A real Kubernetes control plane for the tests, run as local processes, and its process kubelet."""
