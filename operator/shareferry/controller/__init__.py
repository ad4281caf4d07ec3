"""The operator: kopf handlers (thin) over pure builders of Kubernetes objects and status."""
