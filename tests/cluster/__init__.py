"""A real Kubernetes control plane on loopback, built from Go modules, with a process kubelet.

``python -m tests.cluster up`` (``make cluster``) builds what is missing, starts etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and the process kubelet, and prints
``KUBECONFIG=<path>``; ``down`` (``make cluster-down``) stops them. The test suite's cluster
tests start their own in a temporary directory (``tests/cluster/conftest.py``)."""
