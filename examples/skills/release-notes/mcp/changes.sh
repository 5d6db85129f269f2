#!/bin/sh
# A tiny MCP server over stdio (newline-delimited JSON-RPC 2.0), in busybox
# sh: one tool, list_changes, that returns the changes to write notes for.
# examples/skills.yaml starts it with an mcp: skill; it reads VoidBox's and
# most clients' compact JSON (a real server would use a JSON parser).
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  case "$line" in
  *'"method":"initialize"'*)
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"changes","version":"1"}}}';;
  *'"method":"tools/list"'*)
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"tools":[{"name":"list_changes","description":"The changes of this release, one a line","inputSchema":{"type":"object","properties":{}}}]}}';;
  *'"method":"tools/call"'*)
    echo '{"jsonrpc":"2.0","id":'"$id"',"result":{"content":[{"type":"text","text":"add skills to agent stages\nfix a crash when the spec file is empty\nrename an internal helper"}]}}';;
  *)
    [ -z "$id" ] || echo '{"jsonrpc":"2.0","id":'"$id"',"error":{"code":-32601,"message":"no such method"}}';;
  esac
done
