#!/usr/bin/env bash
# Build llama.cpp (llama-cpp-python, CPU only) from the locked sdist once into a stamped folder under the venv,
# keep llama.cpp's converters and gguf-py next to the wheel, and install the wheel; a warm run does nothing.
set -euo pipefail
venv=${1:-.venv}
spec=$(grep -E '^llama-cpp-python==' requirements-llama.lock)
version=$(sed -E 's/^llama-cpp-python==([^ ]+) .*/\1/' <<<"$spec")
sdist_sha256=$(sed -E 's/.*--hash=sha256:([0-9a-f]{64}).*/\1/' <<<"$spec")
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DLLAVA_BUILD=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
key=$(printf '%s\n%s\n%s\n' "$version" "$sdist_sha256" "$CMAKE_ARGS" | sha256sum | cut -c1-16)
mkdir -p "$venv/llama-cpp"
cache="$(cd "$venv/llama-cpp" && pwd -P)/$version-$key"

pip_quiet() {
  # The machine's pip config lists extra local indexes that do not exist; drop only those warnings.
  "$venv/bin/pip" "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
}

if [[ ! -f "$cache/.built" ]]; then
  echo "llama.cpp: building llama-cpp-python $version (CPU, $CMAKE_ARGS) into $cache"
  started=$SECONDS
  rm -rf "$cache"
  mkdir -p "$cache/sdist" "$cache/wheel"
  pip_quiet download --quiet --no-deps --no-binary llama-cpp-python --require-hashes \
    -r <(echo "$spec") -d "$cache/sdist"
  tarball="$cache/sdist/llama_cpp_python-$version.tar.gz"
  echo "$sdist_sha256  $tarball" | sha256sum --check --quiet
  tar -xzf "$tarball" -C "$cache/sdist"
  source_dir="$cache/sdist/llama_cpp_python-$version"
  pip_quiet wheel --quiet --no-deps "$source_dir" -w "$cache/wheel"
  mkdir -p "$cache/convert"
  vendored="$source_dir/vendor/llama.cpp"
  cp -r "$vendored/convert_hf_to_gguf.py" "$vendored/convert_lora_to_gguf.py" "$vendored/conversion" \
    "$vendored/gguf-py" "$vendored/LICENSE" "$cache/convert/"
  rm -rf "$cache/sdist"
  echo "$CMAKE_ARGS" > "$cache/.built"
  echo "llama.cpp: built in $((SECONDS - started)) s"
fi
if [[ "$(cat "$venv/.llama-cpp.stamp" 2>/dev/null)" != "$cache" ]]; then
  pip_quiet install --quiet --no-deps --force-reinstall --require-virtualenv "$cache"/wheel/llama_cpp_python-*.whl
  echo "$cache" > "$venv/.llama-cpp.stamp"
fi
