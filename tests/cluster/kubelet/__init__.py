"""A process kubelet: it runs the pods a real control plane binds to its node as local processes.

There is no container engine on the test machines, so this node agent does the kubelet's job with
plain processes, through the real API and under the real kubelet's confinement: it authenticates
as ``system:node:NAME`` (group ``system:nodes``), so the Node authorizer and the NodeRestriction
admission plugin decide what it may read and write, exactly as for a real kubelet. It reads only
the Secrets, ConfigMaps, PVCs and PVs of the pods bound to it, requests tokens only for their
ServiceAccounts, and writes only its Node, its Lease and the status of its own pods.

Run it from the repository root::

    python -m tests.cluster.kubelet --kubeconfig NODE_KUBECONFIG --node-name NAME \\
        --state-dir DIR --api-host 127.0.0.1 --api-port PORT --ca-file CA.crt \\
        [--shareferry PATH] [--provisioner-kubeconfig ADMIN_KUBECONFIG] \\
        [--register-with-taints key=value:Effect,...]

What differs from a kubelet with a container runtime, on purpose:

* Every pod shares the host's network namespace (as ``hostNetwork: true`` pods do): podIP and
  hostIP are 127.0.0.1, probes dial 127.0.0.1, and two pods listening on one port clash.
* Each container runs in its own mount and PID namespaces (``unshare --mount --propagation
  private --pid --fork``), sees the host's filesystem, with each volume bind-mounted at its
  ``mountPath``. A mount point that does not exist on the host is created there as an empty
  directory (or empty file, for a file ``subPath``), as a runtime creates it in the container's
  root filesystem. ``readOnlyRootFilesystem`` remounts ``/`` read-only inside the namespace;
  the volume mounts stay writable unless ``readOnly``.
* Every process runs as root: ``runAsUser``, ``runAsGroup``, ``fsGroup`` and capabilities are
  ignored. The image is ignored too: every image here is ShareFerry's, whose ENTRYPOINT is
  ``shareferry`` (and CMD ``--help``), run from this checkout's virtualenv.
* A container's stdout and stderr go to ``<state>/pods/<namespace>_<pod>_<uid>/<container>.log``
  (appended across restarts; ``kubectl logs`` does not work). When a pod is removed, its
  volumes and home directory are deleted; its log files stay, as a kubelet keeps a dead
  container's logs until garbage collection.
* Processes never outlive the kubelet: each container's ``unshare`` gets ``PR_SET_PDEATHSIG``
  (SIGKILL), and its death ends the container's PID namespace with every process in it, even
  after ``kill -9`` of the kubelet. Stopping a container sends SIGTERM to its process group
  and SIGKILL after the grace period; when the command ends, what it left behind is killed.
* A host path the container needs (its home directory, this checkout, the Python interpreter)
  that a volume mount would hide, say an ``emptyDir`` at ``/tmp`` while the state directory lies
  under /tmp, is bind-mounted back at its own path.

With ``--provisioner-kubeconfig`` it also runs a local-path volume provisioner
(:mod:`.provisioner`) with those (admin) credentials.
"""
