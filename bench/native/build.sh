#!/usr/bin/env bash
# Builds the native page-fault references into bench/native/bin with the machine's gcc: page_fault1 (private
# anonymous), page_fault2 (private file) and page_fault3 (shared file), each harness.c linked with its test.
# Prints the path of each binary, one per line, page_fault1 first.
# Exit status 3 (and a message on stderr) when gcc is not installed, so callers can carry on without it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "build.sh: $cc not found; the native page-fault references cannot be built" >&2
    exit 3
fi
mkdir -p "$here/bin"
flags=(-O2 -pthread -Wall -Wextra -Werror)
"$cc" "${flags[@]}" -o "$here/bin/page_fault1" "$here/harness.c" "$here/page_fault1.c"
"$cc" "${flags[@]}" -o "$here/bin/page_fault2" "$here/harness.c" "$here/file_fault.c" "$here/page_fault2.c"
"$cc" "${flags[@]}" -o "$here/bin/page_fault3" "$here/harness.c" "$here/file_fault.c" "$here/page_fault3.c"
for test in page_fault1 page_fault2 page_fault3; do
    echo "$here/bin/$test"
done
