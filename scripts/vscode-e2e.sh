#!/usr/bin/env bash
# End-to-end test of the VS Code extension in a real VS Code, offline:
# code-server 4.100.3 (VS Code 1.100.3) + the built .vsix + headless Debian Chromium driven by
# playwright-core. Scenarios:
#   error  codeswift.serverPath points nowhere -> status bar "codeswift: error" and a
#          notification with the fix command `pip install codeswift`
#   stub   e2e/stub-server.cjs (a fixed completion, no Python) -> ghost text, Tab, and the
#          server received codeswift/completionShown and completionAccepted
#   ghost  the real `codeswift lsp` with a tiny random model -> ghost text appears while typing,
#          Tab inserts it, the status bar shows the speed of the last completion
#   badmodel  the real server with codeswift.model = a missing path -> error naming the model
#   real   a real model (CODESWIFT_E2E_MODEL, default Qwen2.5-Coder-0.5B, pulled beforehand) in a
#          workspace of standard-library modules (e2e/real_expected.py): in textwrap.py's indent()
#          a line-mode and a block-mode completion, each ghost text equal to the model's greedy
#          text from `codeswift complete --no-speculation` at that cursor; Tab inserts the first,
#          Ctrl+Right (Accept Next Word) only the first word of the second; the status bar shows
#          the speed; screenshots e2e/screenshot-real-{ghost,accepted,ghost2,word}.png.
#          Not in `all` (needs the model; ~6.5 min on a busy 2-core box, 5 of them loading it).
# Usage: scripts/vscode-e2e.sh [error|stub|badmodel|ghost|real|all]...   (default: all)
# Slow (first run installs and compiles code-server's native modules, ~3 min on 2 cores);
# not part of CI. Needs: node 20, apt packages chromium ripgrep libkrb5-dev build-essential.
# Env: CODESWIFT_E2E_CACHE (code-server install, default ~/.cache/codeswift-e2e),
#      CODESWIFT_BIN (default .venv/bin/codeswift), CODESWIFT_E2E_MODEL (ghost: default a tiny model
#      made with codeswift.testing.make_tiny_model; real: default qwen2.5-coder-0.5b),
#      CODESWIFT_E2E_KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT=$ROOT/vscode-extension
CACHE=${CODESWIFT_E2E_CACHE:-$HOME/.cache/codeswift-e2e}
CODESWIFT=${CODESWIFT_BIN:-$ROOT/.venv/bin/codeswift}
PYTHON=$(dirname "$CODESWIFT")/python
SCENARIOS=${*:-all}
[ "$SCENARIOS" = all ] && SCENARIOS="error stub badmodel ghost"
CODE_SERVER_VERSION=4.100.3
PLAYWRIGHT_VERSION=1.65.1
NODE_GYP=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js

log() { printf '\n== %s\n' "$*"; }

check_tools() {
  local missing=()
  for tool in chromium rg g++ make; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -f /usr/include/krb5.h ] || [ -f /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]}; run: apt-get install -y chromium ripgrep libkrb5-dev build-essential" >&2
    exit 1
  fi
  [ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ] || { echo "code-server $CODE_SERVER_VERSION needs node 20" >&2; exit 1; }
}

# code-server's postinstall downloads ripgrep and refuses to run as root, so do its steps by hand:
# install without scripts, compile the native modules against the local node headers, use /usr/bin/rg.
gyp_rebuild() {
  local dir=$1; shift
  (cd "$dir" && node "$NODE_GYP" rebuild --nodedir=/usr -j 2 "$@" >"$dir/gyp.log" 2>&1) || { tail -20 "$dir/gyp.log"; exit 1; }
}

install_code_server() {
  local marker=$CACHE/.installed-$CODE_SERVER_VERSION-$PLAYWRIGHT_VERSION
  [ -f "$marker" ] && return 0
  log "installing code-server $CODE_SERVER_VERSION and playwright-core $PLAYWRIGHT_VERSION into $CACHE"
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  echo '{"private": true}' >"$CACHE/package.json"
  (cd "$CACHE" && npm install --ignore-scripts --no-audit --no-fund \
    "code-server@$CODE_SERVER_VERSION" "playwright-core@$PLAYWRIGHT_VERSION")
  local cs=$CACHE/node_modules/code-server vs=$CACHE/node_modules/code-server/lib/vscode
  # argon2 (code-server's password hashing) normally comes from node-pre-gyp.
  gyp_rebuild "$CACHE/node_modules/argon2" --module_name=argon2 --module_path=lib/binding/napi-v3 --napi_build_version=3
  mkdir -p "$CACHE/node_modules/argon2/lib/binding/napi-v3"
  cp "$CACHE/node_modules/argon2/build/Release/argon2.node" "$CACHE/node_modules/argon2/lib/binding/napi-v3/"
  (cd "$vs" && npm install --omit=dev --ignore-scripts --no-audit --no-fund)
  (cd "$vs/extensions" && npm install --omit=dev --ignore-scripts --no-audit --no-fund)
  for m in native-watchdog @vscode/spdlog node-pty kerberos @parcel/watcher; do
    echo "compiling $m"; gyp_rebuild "$vs/node_modules/$m"
  done
  mkdir -p "$vs/node_modules/@vscode/ripgrep/bin"
  ln -sf /usr/bin/rg "$vs/node_modules/@vscode/ripgrep/bin/rg"
  ln -sfn node_modules "$vs/node_modules.asar"
  ln -sf code-linux.sh "$vs/bin/remote-cli/code-server"
  ln -sf browser-linux.sh "$vs/bin/helpers/browser.sh"
  node "$cs/out/node/entry.js" --version
  touch "$marker"
}

build_vsix() {
  log "building the extension"
  (cd "$EXT" && { [ -d node_modules ] || npm ci; } && npm run package)
}

tiny_model() {
  if [ -n "${CODESWIFT_E2E_MODEL:-}" ]; then echo "$CODESWIFT_E2E_MODEL"; return; fi
  local dir=$CACHE/tiny-qwen2
  if [ ! -f "$dir/config.json" ]; then
    "$PYTHON" -c "from codeswift.testing import make_tiny_model; make_tiny_model('$dir', 'qwen2')" >&2
  fi
  echo "$dir"
}

# The real scenario's model: a known name must have been pulled (no download in the middle of a test).
real_model() {
  local model=${CODESWIFT_E2E_MODEL:-qwen2.5-coder-0.5b}
  local state
  state=$("$CODESWIFT" models list | awk -v m="$model" '$1 == m { print $3 == "pulled" ? "pulled" : "missing" }')
  if [ "$state" = missing ]; then
    echo "model $model is not pulled; run: $CODESWIFT models pull $model" >&2; exit 1
  fi
  echo "$model"
}

CS_PID=
TMP=
DRIVE_FILE=hello.py   # the file the driver opens
DRIVE_ARGS=()         # more driver arguments
cleanup() {
  if [ -n "$CS_PID" ]; then kill "$CS_PID" 2>/dev/null || true; wait "$CS_PID" 2>/dev/null || true; fi
  if [ -n "$TMP" ] && [ -z "${CODESWIFT_E2E_KEEP:-}" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

# run_scenario NAME SETTINGS_JSON SCREENSHOT [EXPECTED_ERROR]: a fresh workspace, VS Code profile
# and browser each. With EXPECTED_ERROR the status bar must show an error and a notification
# containing that text; without, ghost text must appear.
run_scenario() {
  local name=$1 settings=$2 screenshot=$3 expect=${4:-} port=$((20000 + RANDOM % 20000))
  local dir=$TMP/$name
  mkdir -p "$dir/User" "$dir/extensions" "$dir/workspace/.vscode"
  if declare -F "prepare_$name" >/dev/null; then
    "prepare_$name" "$dir/workspace"   # a scenario's own files (prepare_real)
  else
    # The document the test types into: the tests' sample module (codeswift.testing.SAMPLE_CODE),
    # up to the method the test then writes itself.
    "$PYTHON" - "$dir/workspace/hello.py" <<'PY'
import sys
from codeswift.testing import SAMPLE_CODE
head = '"""A small module for the codeswift VS Code end-to-end test."""\n\n\n'
open(sys.argv[1], "w").write(head + SAMPLE_CODE[:SAMPLE_CODE.index("    def pop")])
PY
  fi
  echo "$settings" >"$dir/workspace/.vscode/settings.json"
  cat >"$dir/User/settings.json" <<'EOF'
{
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoUpdate": false,
  "extensions.autoCheckUpdates": false,
  "editor.inlineSuggest.enabled": true,
  "editor.quickSuggestions": { "other": false, "comments": false, "strings": false },
  "editor.suggestOnTriggerCharacters": false,
  "chat.commandCenter.enabled": false
}
EOF
  local cs=(node "$CACHE/node_modules/code-server/out/node/entry.js" --config "$dir/config.yaml"
    --user-data-dir "$dir" --extensions-dir "$dir/extensions")
  log "[$name] installing codeswift.vsix into code-server"
  "${cs[@]}" --install-extension "$EXT/codeswift.vsix"
  log "[$name] starting code-server on port $port"
  CODESWIFT_STUB_LOG=$dir/stub.log "${cs[@]}" --auth none --bind-addr "127.0.0.1:$port" --disable-telemetry --disable-update-check \
    --disable-workspace-trust --disable-getting-started-override "$dir/workspace" >"$dir/code-server.log" 2>&1 &
  CS_PID=$!
  for _ in $(seq 60); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 1
  done
  log "[$name] driving VS Code in headless chromium"
  local rc=0
  NODE_PATH=$CACHE/node_modules node "$EXT/e2e/drive.cjs" --scenario "$name" \
    --url "http://127.0.0.1:$port/?folder=$dir/workspace" --file "$DRIVE_FILE" \
    --screenshot "$screenshot" --profile "$dir/chromium" ${expect:+--expect "$expect"} "${DRIVE_ARGS[@]}" || rc=$?
  kill "$CS_PID" 2>/dev/null || true; wait "$CS_PID" 2>/dev/null || true; CS_PID=
  if [ $rc -ne 0 ]; then
    echo "--- code-server log (tail)"; tail -30 "$dir/code-server.log"
    echo "--- extension host logs"
    find "$dir/logs" -name '*codeswift*' -exec tail -40 {} \; 2>/dev/null || true
    return $rc
  fi
}

# The real scenario's workspace and plan: the expected ghost texts, from `codeswift complete`.
prepare_real() {
  log "[real] expected completions: codeswift complete --no-speculation with $REAL_MODEL"
  local t0=$SECONDS
  "$PYTHON" "$EXT/e2e/real_expected.py" "$CODESWIFT" "$REAL_MODEL" "$1" "$TMP/real-plan.json"
  echo "(computed in $((SECONDS - t0)) s)"
}

need_lsp() {
  [ -x "$CODESWIFT" ] || { echo "$CODESWIFT not found: pip install -e $ROOT" >&2; exit 1; }
  "$CODESWIFT" lsp --help >/dev/null || { echo "'codeswift lsp' is not available" >&2; exit 1; }
}

check_tools
install_code_server
build_vsix
TMP=$(mktemp -d /tmp/codeswift-e2e.XXXXXX)
for scenario in $SCENARIOS; do
  case $scenario in
    error)
      run_scenario error '{"codeswift.serverPath": "/nonexistent/bin/codeswift"}' "$EXT/e2e/screenshot-error.png" \
        'codeswift.serverPath is /nonexistent/bin/codeswift, which does not exist. To fix it, run: pip install codeswift' ;;
    stub)
      run_scenario stub "{\"codeswift.serverPath\": \"$EXT/e2e/stub-server.cjs\", \"codeswift.model\": \"stub\"}" \
        "$EXT/e2e/screenshot-stub.png"
      # The Tab in drive.cjs must have reached the server as a whole-item acceptance.
      grep -q '"method":"codeswift/completionShown","params":{"uri":"file://[^"]*hello.py","id":"stub-' "$TMP/stub/stub.log"
      grep -q '"method":"codeswift/completionAccepted","params":{"uri":"file://[^"]*hello.py","id":"stub-[0-9]*","acceptedChars":null}' "$TMP/stub/stub.log"
      # ...and Ctrl+Right (accept word) as a partial one.
      grep -q '"method":"codeswift/completionAccepted","params":{"uri":"file://[^"]*hello.py","id":"stub-[0-9]*","acceptedChars":[0-9]' "$TMP/stub/stub.log"
      grep 'completionAccepted' "$TMP/stub/stub.log"
      # The menu's re-index reached the server, and disable/enable restarted it.
      grep -q '"method":"codeswift/reindex"' "$TMP/stub/stub.log"
      [ "$(grep -c '"method":"initialize"' "$TMP/stub/stub.log")" = 2 ]
      [ "$(grep -c '"method":"exit"' "$TMP/stub/stub.log")" -ge 1 ]
      echo "stub server received completionShown, completionAccepted (whole and partial), reindex, restart" ;;
    badmodel)
      need_lsp
      run_scenario badmodel "{\"codeswift.serverPath\": \"$CODESWIFT\", \"codeswift.model\": \"/nonexistent/model\"}" \
        "$EXT/e2e/screenshot-badmodel.png" 'Model /nonexistent/model (codeswift.model)' ;;
    ghost)
      need_lsp
      model=$(tiny_model)
      run_scenario ghost "{\"codeswift.serverPath\": \"$CODESWIFT\", \"codeswift.model\": \"$model\",
        \"codeswift.device\": \"cpu\", \"codeswift.maxTokens\": 16, \"codeswift.languages\": [\"python\"]}" "$EXT/e2e/screenshot.png" ;;
    real)
      need_lsp
      REAL_MODEL=$(real_model)
      # Default device, backend and maxTokens (64), as a user gets them; verifyCached (the default)
      # makes typing along a suggestion show exactly the model's greedy text.
      DRIVE_FILE=textwrap.py DRIVE_ARGS=(--plan "$TMP/real-plan.json")
      t0=$SECONDS
      run_scenario real "{\"codeswift.serverPath\": \"$CODESWIFT\", \"codeswift.model\": \"$REAL_MODEL\",
        \"codeswift.verifyCached\": true}" "$EXT/e2e/screenshot-real.png"
      DRIVE_FILE=hello.py DRIVE_ARGS=()
      # Every request of the extension parsed on the server (one without params once did not).
      ! grep -r "malformed params" "$TMP/real/logs" || { echo "the server could not parse a request" >&2; exit 1; }
      echo "real scenario: $((SECONDS - t0)) s" ;;
    *) echo "unknown scenario $scenario (error|stub|badmodel|ghost|real|all)" >&2; exit 2 ;;
  esac
done
log "e2e passed: $SCENARIOS"
