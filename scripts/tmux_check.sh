#!/usr/bin/env bash
# Drive the real TUI in tmux, as a person would, and check what the screen shows.
#
# Starts `playground tui agents/support_router.yaml` at 160x45, types a request,
# runs it in step mode, holds before the router -> billing handoff, edits the
# payload, steps on, and checks the captured screen: the inspector shows the held
# payload, and billing's pane shows the (edited) context it received.
#
# Usage: scripts/tmux_check.sh   (from the repository root; needs tmux)
set -euo pipefail

cd "$(dirname "$0")/.."
PLAYGROUND=${PLAYGROUND:-.venv/bin/playground}
SOCKET=pg-check-$$
DB=$(mktemp -d)/tui.db
SCREEN=$(mktemp)

tmux_() { tmux -L "$SOCKET" "$@"; }
cleanup() { tmux_ kill-server 2>/dev/null || true; rm -f "$SCREEN"; }
trap cleanup EXIT

capture() { tmux_ capture-pane -p >"$SCREEN"; }

# Poll the screen (up to ~10 s) until it shows $1.
wait_for() {
    for _ in $(seq 100); do
        capture
        if grep -qF -- "$1" "$SCREEN"; then return 0; fi
        sleep 0.1
    done
    echo "FAIL: the screen never showed: $1" >&2
    cat "$SCREEN" >&2
    exit 1
}

# Keys go one at a time: an Escape followed at once by a letter reads as alt+letter.
key() { tmux_ send-keys "$1"; sleep 0.15; }

# Check that the screen shows $1 (polling: a capture can land mid-frame).
expect() {
    for _ in $(seq 30); do
        if grep -qF -- "$1" "$SCREEN"; then
            echo "ok: $2"
            return 0
        fi
        sleep 0.1
        capture
    done
    echo "FAIL: $2 (expected: $1)" >&2
    cat "$SCREEN" >&2
    exit 1
}

tmux_ new-session -d -x 160 -y 45 "$PLAYGROUND tui agents/support_router.yaml --db $DB"
wait_for "Type a request"
expect "IDLE" "every agent has an idle pane before the first run"

tmux_ send-keys -l "I was charged twice on my last invoice"
wait_for "I was charged twice on my last invoice"
key Escape
key s
wait_for "before model call #1 of router"
expect "PAUSED" "step mode holds before router's model call"

key s
wait_for "before handoff #2 of router"
expect "hand off to billing: customer_id=C-1" "the banner shows the payload about to be delivered"
expect "handoff router → billing · held before delivery" "the inspector shows the held handoff"
expect "schema {customer_id: str, question: str}" "the inspector shows the handoff's schema"

key e
wait_for "Handoff context router → billing"
key F7
tmux_ send-keys -l '{"customer_id": "C-9", "question": "Refund the second charge"}'
sleep 0.2
key C-s
wait_for "router ⇢✎ billing"
expect "before model call #3 of billing" "the edited handoff was delivered and billing is held next"
expect "from router: customer_id=C-9" "billing's pane shows the edited context it received"
expect "delivered, edited" "the inspector marks the handoff as edited"

key c
wait_for "COMPLETED"
expect "I checked your account" "billing answered"
expect "per agent  router 1 call" "totals per agent"

key q
for _ in $(seq 50); do
    tmux_ has-session 2>/dev/null || break
    sleep 0.1
done
if tmux_ has-session 2>/dev/null; then
    echo "FAIL: q did not quit" >&2
    exit 1
fi
echo "ok: q quits"

session=$($PLAYGROUND sessions --db "$DB" --json --limit 1 | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["session_id"])')
if $PLAYGROUND sessions show "$session" --db "$DB" --json | .venv/bin/python -c '
import json, sys
events = json.load(sys.stdin)["events"]
delivered = [e for e in events if e["kind"] == "handoff_delivered"]
assert delivered and delivered[0]["edited"] and delivered[0]["payload"]["customer_id"] == "C-9", delivered
'; then
    echo "ok: the stored session has the edited handoff"
else
    echo "FAIL: the stored session lacks the edited handoff" >&2
    exit 1
fi
echo "tmux check passed"
