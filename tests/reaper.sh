#!/usr/bin/env bash
# The cleanup that outlives a test process (started by tests/helpers.ts, one per test process, in
# its own session so that a Ctrl-C does not reach it). `deno test` ends on SIGINT without running
# any listener or `finally`, and nothing runs after a SIGKILL, so a test process cannot clean up
# after itself when it is interrupted. Usage: reaper.sh JOURNAL, with stdin a pipe that the test
# process holds open for as long as it lives. It appends to JOURNAL (synchronously, so that a kill
# right after loses nothing) one line per thing:
#   pid N     a child it started (ended with SIGTERM, then SIGKILL, with its process group if it leads one)
#   end N     that child ended (it is left alone)
#   shm NAME  a name it handed out under /dev/shm (svmtest-...)
#   path P    a temporary file or directory it made (svm-... in a temporary directory)
# When stdin ends (the test process exited or died), the children still running are ended, then
# every name and path is removed, and the journal. Anything that does not look like one of those is
# ignored.
journal=$1
# Only the end of stdin ends it: `bun test` sends SIGTERM to the processes a timed-out test
# started, this one among them when that test was the first to need it (and the ignored signals
# are `cat`'s too).
trap '' TERM HUP INT
case $journal in
*/svm-reaper-*) ;;
*) exit 2 ;;
esac
cat >/dev/null
state=$(awk '
  $1 == "pid" && $2 ~ /^[0-9]+$/ { live[$2] = 1 }
  $1 == "end" { delete live[$2] }
  $1 == "shm" && $2 ~ /^svmtest-[A-Za-z0-9._-]+$/ { shm[$2] = 1 }
  $1 == "path" && $2 ~ /^\/([A-Za-z0-9._-]+\/)*svm-[A-Za-z0-9._-]+$/ && $2 !~ /\/\.\.?\// { path[$2] = 1 }
  END {
    for (k in live) print "pid", k
    for (k in shm) print "shm", k
    for (k in path) print "path", k
  }
' "$journal" 2>/dev/null)
# Sends signal $1 to the process group that $2 leads, or to $2 alone where it leads none.
signal() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null; }
pids=$(printf '%s\n' "$state" | awk '$1 == "pid" { print $2 }')
if [ -n "$pids" ]; then
  for p in $pids; do signal TERM "$p"; done
  # Three seconds to unwind (a benchmark removes its own segments on SIGTERM), then SIGKILL.
  for _ in $(seq 30); do
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $pids; do signal KILL "$p"; done
fi
printf '%s\n' "$state" | while read -r kind arg; do
  case $kind in
  shm) rm -f "/dev/shm/$arg" ;;
  path) rm -rf "$arg" ;;
  esac
done
rm -f "$journal"
