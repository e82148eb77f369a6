#!/usr/bin/env bash
# Re-create ui/assets/ (the JavaScript that bertviz views need) from npm.
#
# bertviz loads require.js, d3 and jQuery from CDNs, which Headlight's users may not reach;
# ui/bertviz_html.py inlines these files instead. Versions are pinned to what
# bertviz 1.4.1 asks its CDN for (d3 5.7.0, require.js 2.3.6); bertviz asks for jQuery 2.0.0,
# which npm does not carry, so 2.1.0, the first 2.x release there. Needs node/npm and the npm
# registry. Usage:
#   scripts/vendor_js.sh
set -euo pipefail

D3_VERSION=5.7.0
JQUERY_VERSION=2.1.0
REQUIREJS_VERSION=2.3.6

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$repo_root/ui/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
for spec in "d3@$D3_VERSION" "jquery@$JQUERY_VERSION" "requirejs@$REQUIREJS_VERSION"; do
    tarball="$(npm pack --silent "$spec")"
    name="${spec%@*}"
    mkdir "$name"
    tar xzf "$tarball" -C "$name"
done

mkdir -p "$assets"
cp d3/package/dist/d3.min.js "$assets/d3.min.js"
cp jquery/package/dist/jquery.min.js "$assets/jquery.min.js"
# The requirejs package ships only the unminified file; it is small enough to inline as is.
cp requirejs/package/require.js "$assets/require.js"

{
    echo "Third-party JavaScript in this directory, fetched from npm by scripts/vendor_js.sh."
    echo
    echo "== d3.min.js: d3 $D3_VERSION (BSD-3-Clause) =="
    cat d3/package/LICENSE
    echo
    echo "== jquery.min.js: jQuery $JQUERY_VERSION (MIT) =="
    cat jquery/package/MIT-LICENSE.txt
    echo
    echo "== require.js: RequireJS $REQUIREJS_VERSION (MIT) =="
    # The npm package has no LICENSE file; its header names the license and holder.
    sed -n '2,3p' requirejs/package/require.js | sed 's/^ \* //'
    echo
    # The MIT terms, as in jQuery's file above (same holder, same wording).
    sed -n '/^Permission is hereby granted/,$p' jquery/package/MIT-LICENSE.txt
} > "$assets/LICENSES.txt"

echo "Wrote $(ls "$assets" | tr '\n' ' ')to $assets"
