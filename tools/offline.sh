#!/usr/bin/env bash
# Run a command with the outside network cut off, to prove the book needs none.
#
# Where the kernel lets us (root, or unprivileged user namespaces), the command runs in a
# fresh network namespace with only the loopback interface up (Jupyter kernels talk to
# their client over 127.0.0.1). Elsewhere (macOS, locked-down containers) it runs as is
# with the Hugging Face libraries told to stay offline, and says so.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
if command -v unshare >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
    exec unshare --net -- sh -c 'ip link set lo up 2>/dev/null || ifconfig lo up; exec "$@"' sh "$@"
  elif unshare --user --map-root-user --net true 2>/dev/null; then
    exec unshare --user --map-root-user --net -- sh -c 'ip link set lo up 2>/dev/null || ifconfig lo up; exec "$@"' sh "$@"
  fi
fi
echo "tools/offline.sh: cannot cut the network here (no network namespaces); running with HF_HUB_OFFLINE=1 only" >&2
exec "$@"
