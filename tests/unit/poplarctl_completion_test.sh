#!/usr/bin/env bash
# tools/poplarctl/poplarctl.bash-completion: what <TAB> offers at each position (no indexer
# needed: a stub poplarctl on PATH answers the JSON the completion asks for).
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/poplarctl" <<'STUB'
#!/bin/sh
case "$*" in
  *"accounts list"*) echo '{"accounts":[{"user":"alice"},{"user":"albert"},{"user":"bob"}]}' ;;
  *"sessions list"*) echo '{"sessions":[{"session_id":"s-17"}]}' ;;
esac
STUB
chmod +x "$tmp/poplarctl"
export PATH="$tmp:$PATH"
# shellcheck disable=SC1090
source "$src"
failed=0
expect() {  # expect "WANT" WORD...   (the last word is the one being completed)
  local want=$1; shift
  COMP_WORDS=(poplarctl "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _poplarctl
  local got="${COMPREPLY[*]}"
  if [ "$got" = "$want" ]; then echo "ok    poplarctl $*<TAB> -> $want"; else
    echo "FAIL  poplarctl $*<TAB>: want [$want] got [$got]"; failed=$((failed + 1)); fi
}
expect "accounts" acc
expect "sessions status" s
expect "add apop" accounts a
expect "list show" mailboxes ""
expect "alice albert" accounts passwd al
expect "bob" --socket /tmp/x.sock accounts remove b
expect "s-17" sessions end s
expect "--user" sessions list --us
expect "--older-than" sessions list --user alice --old
expect "alice albert" sessions list --user al
expect "--password-stdin" accounts add alice --pass
expect "--json" --js
echo "$failed failed"
exit $((failed > 0))
