#!/usr/bin/env bash
# Prints the tier-1 listings of the facade/raw method pairs in Program.cs (see docs/zero-cost.md).
# Usage: bench/Engine.Disasm/show-tier1.sh [extra args for Engine.Disasm, e.g. --late-init]
# Set ENGINE_SYSTEMATIC=1 to see the listings with the scheduling hook on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
dotnet build "$here/Engine.Disasm.csproj" -c Release -nologo -v quiet >/dev/null
DOTNET_JitDisasm="Facade* Raw*" DOTNET_JitStdOutFile="$out" \
  dotnet "$here/bin/Release/net10.0/Engine.Disasm.dll" "$@"
# Keep only the optimised listings: Tier1 with tiered compilation, FullOpts without it.
awk '/^; Assembly listing/ { keep = /\((Tier1|FullOpts)\)/ } keep' "$out"
