#!/bin/sh
# tests/packages/steps.sh - the commands of one section of a README.Debian
#
#   steps.sh FILE SECTION
#
# Prints, one per line, the commands (lines starting with "  # ", the root
# prompt) of the section whose title (a line underlined with dashes)
# starts with SECTION, so that the package suite runs exactly what the
# installed README.Debian tells an administrator.  Fails when the section
# has no command.
set -eu
awk -v want="$2" '
	/^-+$/ && prev != "" { cur = prev; prev = ""; next }
	{ prev = $0 }
	index(cur, want) == 1 && /^  # / { print substr($0, 5); n++ }
	END { exit n ? 0 : 1 }
' "$1" || { echo "steps.sh: no commands in section \"$2\" of $1" >&2; exit 1; }
