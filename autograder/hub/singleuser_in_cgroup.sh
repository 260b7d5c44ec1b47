#!/bin/sh
# Starts the grading account's single-user server inside its delegated cgroups (cgroup_delegation.py).
# cgroup v1: the shell writes its own pid into each cgroup.procs file named in SPAMKIT_CGROUP_PROCS
# (':'-separated), then becomes the server, so the server and everything it starts (formgrader's
# autograde, the sandboxes) are born inside.
# cgroup v2: the grader may not move itself in (the common ancestor of the hub's cgroup and its leaf is
# root's), so the hub's spawner moved this process, as root, before it became the grader; here it is
# only checked that /proc/self/cgroup shows the leaf named in SPAMKIT_CGROUP_V2_LEAF.
# A cgroup that cannot be entered stops the start: grading would be refused later anyway.
set -eu
old_ifs=$IFS
IFS=:
for procs in ${SPAMKIT_CGROUP_PROCS:-}; do
  echo $$ > "$procs"
done
IFS=$old_ifs
if [ -n "${SPAMKIT_CGROUP_V2_LEAF:-}" ] && ! grep -qxF "0::${SPAMKIT_CGROUP_V2_LEAF}" /proc/self/cgroup; then
  echo "singleuser_in_cgroup.sh: not in the cgroup v2 leaf ${SPAMKIT_CGROUP_V2_LEAF}" >&2
  exit 1
fi
unset SPAMKIT_CGROUP_PROCS SPAMKIT_CGROUP_V2_LEAF
exec "$@"
