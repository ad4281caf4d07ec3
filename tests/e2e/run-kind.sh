#!/usr/bin/env bash
# End to end on kind: build the image, install the chart, run FileShare, CopyJob and SyncSchedule
# examples against the Files emulator and Azurite inside the cluster, and check every copied
# file's MD5 against the seeded data.
#
#   tests/e2e/run-kind.sh            (from the repository root; needs docker, kind, kubectl, python3)
#
# Environment:
#   KIND_CLUSTER_NAME   cluster to use or create (default shareferry-e2e)
#   KEEP_CLUSTER=1      keep the cluster afterwards (a cluster that existed before is always kept)
#   SHAREFERRY_IMAGE    tag for the image built from the Dockerfile (default shareferry:e2e)
#   AZURITE_IMAGE       Azurite image (default mcr.microsoft.com/azure-storage/azurite:3.35.0)
#   HELM                helm binary (default: .cache/bin/helm from `make cluster-tools`, else helm on PATH)
#   E2E_TIMEOUT         seconds to wait for each step (default 300)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/e2e"
CLUSTER=${KIND_CLUSTER_NAME:-shareferry-e2e}
CONTEXT="kind-$CLUSTER"
IMAGE=${SHAREFERRY_IMAGE:-shareferry:e2e}
AZURITE_IMAGE=${AZURITE_IMAGE:-mcr.microsoft.com/azure-storage/azurite:3.35.0}
TIMEOUT=${E2E_TIMEOUT:-300}
NS=shareferry-e2e            # the namespace the manifests name
SYSTEM_NS=shareferry-system  # the operator's
RELEASE=shareferry
# The development account every storage emulator serves (Microsoft's published, well-known key).
DEV_ACCOUNT=devstoreaccount1
DEV_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
WORK=$(mktemp -d)
CREATED_CLUSTER=0

log() { printf '\n== %s\n' "$*"; }
fail() { printf 'e2e: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

for tool in docker kind kubectl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
if [[ -z "${HELM:-}" ]]; then
  if [[ -x "$ROOT/.cache/bin/helm" ]]; then HELM="$ROOT/.cache/bin/helm"
  elif command -v helm >/dev/null; then HELM=$(command -v helm)
  else fail "helm is missing: run make cluster-tools (or set HELM)"; fi
fi

diagnose() {
  log "diagnostics"
  k get nodes -o wide || true
  k -n "$SYSTEM_NS" get all || true
  k -n "$NS" get all,pvc,fileshares,copyjobs,syncschedules,configmaps || true
  k -n "$NS" describe fileshares,copyjobs,syncschedules || true
  k -n "$NS" get events --sort-by=.lastTimestamp | tail -n 60 || true
  k -n "$SYSTEM_NS" logs "deployment/$RELEASE" --tail=200 || true
  for pod in $(k -n "$NS" get pods -l shareferry.dev/copyjob -o name 2>/dev/null); do
    echo "--- $pod"; k -n "$NS" logs "$pod" --tail=50 || true
  done
}

finish() {
  local status=$?
  if [[ $status -ne 0 ]]; then diagnose; fi
  if [[ $CREATED_CLUSTER -eq 1 && "${KEEP_CLUSTER:-0}" != 1 ]]; then
    log "deleting cluster $CLUSTER"; kind delete cluster --name "$CLUSTER" || true
  fi
  rm -rf "$WORK"
  exit $status
}
trap finish EXIT

render() {  # a manifest with the images filled in
  sed -e "s#@SHAREFERRY_IMAGE@#$IMAGE#g" -e "s#@AZURITE_IMAGE@#$AZURITE_IMAGE#g" "$HERE/manifests/$1"
}

wait_for_phase() {  # wait_for_phase <copyjob>: Succeeded, or fail at once on a terminal phase
  local name=$1 phase="" deadline=$((SECONDS + TIMEOUT))
  while (( SECONDS < deadline )); do
    phase=$(k -n "$NS" get copyjob "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    case "$phase" in
      Succeeded) echo "copyjob/$name Succeeded"; return 0 ;;
      Failed|CompletedWithErrors) fail "copyjob/$name ended $phase" ;;
    esac
    sleep 3
  done
  fail "copyjob/$name is still '${phase:-Pending}' after ${TIMEOUT}s"
}

log "cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "using the existing cluster"
else
  kind create cluster --name "$CLUSTER" --wait 180s
  CREATED_CLUSTER=1
fi

log "image $IMAGE"
docker build --tag "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"
docker pull --quiet "$AZURITE_IMAGE"
kind load docker-image "$AZURITE_IMAGE" --name "$CLUSTER"

log "namespace $NS, credentials, Files emulator and Azurite"
k delete namespace "$NS" --ignore-not-found --wait --timeout "${TIMEOUT}s"
k create namespace "$NS"
k -n "$NS" create secret generic emulator-credentials \
  --from-literal=AZURE_STORAGE_ACCOUNT_NAME="$DEV_ACCOUNT" --from-literal=AZURE_STORAGE_ACCOUNT_KEY="$DEV_KEY" \
  >/dev/null
render backends.yaml | k apply -f -
for deployment in files-emulator azurite; do
  k -n "$NS" rollout status "deployment/$deployment" --timeout "${TIMEOUT}s"
done

log "chart $ROOT/charts/shareferry (watching $NS)"
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/shareferry" \
  --kube-context "$CONTEXT" --namespace "$SYSTEM_NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set "watchNamespaces={$NS}" --set worker.statusIntervalSeconds=1 \
  --wait --timeout "${TIMEOUT}s"
k -n "$SYSTEM_NS" rollout status "deployment/$RELEASE" --timeout "${TIMEOUT}s"

log "seed data"
render seed.yaml | k apply -f -
k -n "$NS" wait --for=condition=complete job/seed --timeout "${TIMEOUT}s"
k -n "$NS" logs job/seed --container seed > "$WORK/expected.txt"
echo "$(wc -l < "$WORK/expected.txt") files seeded"

log "FileShares"
k apply -f "$HERE/manifests/fileshares.yaml"
k -n "$NS" wait --for=condition=Ready fileshare/e2e-share fileshare/e2e-mirror --timeout "${TIMEOUT}s"

verify() {
  python3 "$HERE/verify_copyjob.py" --context "$CONTEXT" --namespace "$NS" --copyjob "$1" --expected "$WORK/expected.txt"
}

log "CopyJob upload (volume to share, 2 workers)"
k apply -f "$HERE/manifests/copyjob-upload.yaml"
wait_for_phase upload
verify upload

log "CopyJob to-blob (share to Azurite) and SyncSchedule mirror (share to share)"
k apply -f "$HERE/manifests/copyjob-to-blob.yaml" -f "$HERE/manifests/syncschedule.yaml"
wait_for_phase to-blob
verify to-blob
deadline=$((SECONDS + TIMEOUT))
until [[ -n "$(k -n "$NS" get syncschedule mirror -o jsonpath='{.status.lastSuccessfulTime}')" ]]; do
  (( SECONDS < deadline )) || fail "syncschedule/mirror has no successful run after ${TIMEOUT}s"
  sleep 3
done
run=""
for name in $(k -n "$NS" get copyjobs -l shareferry.dev/syncschedule=mirror -o jsonpath='{.items[*].metadata.name}'); do
  if [[ "$(k -n "$NS" get copyjob "$name" -o jsonpath='{.status.phase}')" == Succeeded ]]; then run=$name; break; fi
done
[[ -n "$run" ]] || fail "syncschedule/mirror reports a success but none of its CopyJobs Succeeded"
verify "$run"

log "deleting a CopyJob deletes its worker Job and results"
k -n "$NS" delete copyjob upload --wait --timeout "${TIMEOUT}s"
k -n "$NS" wait --for=delete job -l shareferry.dev/copyjob=upload --timeout "${TIMEOUT}s" 2>/dev/null || true
[[ -z "$(k -n "$NS" get jobs,configmaps -l shareferry.dev/copyjob=upload -o name)" ]] \
  || fail "the worker Job or results ConfigMaps of copyjob/upload outlived it"

log "e2e: all checks passed"
