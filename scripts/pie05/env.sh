# Sourced by the scripts in scripts/pie05: where the real pie-server 0.5.2 and its model live.
# Everything is derived from PIE05_CACHE so that CI can point all stages of a run at one place.
PIE05_CACHE="${PIE05_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/libpie/pie05}"
case "$PIE05_CACHE" in /*) ;; *) PIE05_CACHE="$PWD/$PIE05_CACHE" ;; esac
PIE05_VENV="$PIE05_CACHE/venv"
PIE05_MODEL="$PIE05_CACHE/model"
# Bumped whenever gen_model.py changes what it writes, so old caches are regenerated.
PIE05_MODEL_STAMP=".complete-v1"
# The server keeps installed programs and its compiled-component cache under $HOME/.pie; it gets
# its own HOME here (the cache makes every launch after the first fast, also across restarts).
PIE05_SERVER_HOME="$PIE05_CACHE/server-home"
# Exact versions: the protocol reference and conformance05.py describe these.
PIE05_PIP_PACKAGES=(pie-server==0.5.2 pie-language-python==0.5.2 pie-client==0.5.3
  msgpack websockets numpy tokenizers)
export PIE05_CACHE PIE05_VENV PIE05_MODEL PIE05_MODEL_STAMP PIE05_SERVER_HOME
