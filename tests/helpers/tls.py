"""TLS for the broker tests: a CA and certificates made with openssl, a Mosquitto that requires them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import Broker, free_port


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


def make_cert(d: Path, name: str, ca: tuple[Path, Path], server: bool) -> tuple[Path, Path]:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", f"{name}.crt", cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


def tls_broker(tmp_path: Path, pki: dict[str, Path], require_cert: bool = False, extra: str = "") -> Broker:
    """A broker with a TLS listener (the device) and a plain loopback listener (the test's recorder)."""
    tls_port = free_port()
    b = Broker(tmp_path, free_port(), extra_conf=(
        f"listener {tls_port} 127.0.0.1\ncafile {pki['ca']}\ncertfile {pki['server_crt']}\n"
        f"keyfile {pki['server_key']}\nrequire_certificate {str(require_cert).lower()}\n" + extra))
    b.tls_port = tls_port  # type: ignore[attr-defined]
    b.start()
    return b


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)
