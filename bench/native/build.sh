#!/usr/bin/env bash
# Builds bench/native/page_fault1.c into bench/native/bin/page_fault1 with the machine's gcc.
# Exit status 3 (and a message on stderr) when gcc is not installed, so callers can carry on without it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "build.sh: $cc not found; the native page_fault1 reference cannot be built" >&2
    exit 3
fi
mkdir -p "$here/bin"
"$cc" -O2 -pthread -Wall -Wextra -Werror -o "$here/bin/page_fault1" "$here/page_fault1.c"
echo "$here/bin/page_fault1"
