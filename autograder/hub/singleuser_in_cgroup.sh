#!/bin/sh
# Starts the grading account's single-user server inside its delegated cgroups (cgroup_delegation.py):
# the shell writes its own pid into each cgroup.procs file named in SPAMKIT_CGROUP_PROCS (':'-separated),
# then becomes the server, so the server and everything it starts (formgrader's autograde, the sandboxes)
# are born inside. A cgroup that cannot be entered stops the start: grading would be refused later anyway.
set -eu
old_ifs=$IFS
IFS=:
for procs in ${SPAMKIT_CGROUP_PROCS:-}; do
  echo $$ > "$procs"
done
IFS=$old_ifs
unset SPAMKIT_CGROUP_PROCS
exec "$@"
