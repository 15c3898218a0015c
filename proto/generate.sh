#!/bin/sh
# Regenerates the committed protobuf-c sources of Sources/CStepRunProto from proto/.
# Needs protoc-c from protobuf-c 1.4.1 (Debian: protobuf-c-compiler); other versions emit
# different bytes, so check the diff before committing their output.
set -eu

proto_dir=$(cd "$(dirname "$0")" && pwd)
target_dir="$proto_dir/../Sources/CStepRunProto"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Run from proto/ so the generated #include reads "steprun/v1/steprun.pb-c.h", which resolves
# through the target's include/ directory.
cd "$proto_dir"
protoc-c --c_out="$out" steprun/v1/steprun.proto

mkdir -p "$target_dir/steprun/v1" "$target_dir/include/steprun/v1"
cp "$out/steprun/v1/steprun.pb-c.c" "$target_dir/steprun/v1/steprun.pb-c.c"
cp "$out/steprun/v1/steprun.pb-c.h" "$target_dir/include/steprun/v1/steprun.pb-c.h"
