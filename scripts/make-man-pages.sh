#!/usr/bin/env bash
# Man pages from the program's own --help (help2man): acheron(1) and one page
# per command, acheron-photon-serve(1) for `acheron photon serve`.
#   make-man-pages.sh ACHERON_BINARY OUTDIR
set -euo pipefail
bin=$1
out=$2
command -v help2man >/dev/null || { echo "make-man-pages: help2man is not installed (Debian: help2man)" >&2; exit 2; }
mkdir -p "$out"
version=$("$bin" --version)
see_also=$(mktemp)
trap 'rm -f "$see_also"' EXIT
{
  echo "[SEE ALSO]"
  echo "The guides: \\fBacheron help topics\\fR; every command: \\fBacheron help \\-\\-list\\fR."
} > "$see_also"
page() {  # page COMMAND-PATH (empty: the program itself)
  local path=$1 name=acheron desc="scientific resources on the network"
  if [ -n "$path" ]; then
    name="acheron-${path// /-}"
    desc=$("$bin" $path --help | head -1)  # a command's help starts with its description
  fi
  help2man --no-info --no-discard-stderr --section=1 --source="Acheron $version" \
    --manual="Acheron" --version-string="$version" --name="$desc" \
    --include="$see_also" --output="$out/$name.1" "$bin${path:+ $path}"
  # The title line names the page, not only the program.
  sed -i "s/^\.TH ACHERON /.TH ${name^^} /" "$out/$name.1"
}
export -f page
export bin out version see_also
# Two at a time: most of the time is help2man's and the program's start-up.
{ echo ""; "$bin" help --list; } | xargs -d '\n' -P "$(nproc)" -I{} bash -c 'page "{}"'
echo "make-man-pages: $(ls "$out"/acheron*.1 | wc -l) pages in $out"
