"""A real OpenLDAP server (Debian's `slapd`) for tests: its own config and database in a temporary folder,
plain LDAP (with StartTLS) and LDAPS on free ports, filled through ldap3 as its root DN.

Entries, under dc=lab, each person with a password (PASSWORDS):
    ou=people: uid=alice and uid=bob (DNs a template can build), cn=Carol Chen (uid carol, sAMAccountName
               CChen: a DN only a lookup finds, as in Active Directory)
    cn=reader,dc=lab: the search account
    ou=groups: cn=gpu (members: alice, Carol), cn=cpu (member: bob)
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
SCHEMAS = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")

PASSWORDS = {"alice": "Alice-Ldap-Pw-1", "bob": "Bob-Ldap-Pw-2", "carol": "Carol-Ldap-Pw-4", "reader": "Reader-Pw-3"}
PEOPLE = "ou=people,dc=lab"
ALICE_DN = f"uid=alice,{PEOPLE}"
BOB_DN = f"uid=bob,{PEOPLE}"
CAROL_DN = f"cn=Carol Chen,{PEOPLE}"
READER_DN = "cn=reader,dc=lab"
GPU_GROUP = "cn=gpu,ou=groups,dc=lab"
CPU_GROUP = "cn=cpu,ou=groups,dc=lab"
_ROOT_DN, _ROOT_PW = "cn=root,dc=lab", "Root-Pw-0"


def missing() -> str | None:
    """Why a real slapd cannot run here, or None."""
    if SLAPD is None:
        return "slapd is not installed (Debian package slapd)"
    for schema in ("core", "cosine", "inetorgperson", "nis"):
        if not (SCHEMAS / f"{schema}.schema").is_file():
            return f"{SCHEMAS}/{schema}.schema is missing (Debian package slapd)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    def __init__(self, folder: Path, tls=None):
        """`tls`: an Issued certificate for 127.0.0.1/localhost (and its CA file), or None for plain LDAP."""
        self.folder, self.port, self.tls_port = folder, _free_port(), _free_port()
        (folder / "db").mkdir(parents=True)
        # Active Directory's sAMAccountName (same OID), matched case-insensitively as AD does; Debian's
        # msuser.schema defines it without an equality rule, so a search filter could never match it.
        (folder / "ad.schema").write_text(
            "attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch "
            "SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )\n")
        # The schemas Debian's own slapd loads (nis: posixGroup's memberUid, which ldapauthenticator's group
        # search asks for), plus that AD attribute.
        lines = [f"include {SCHEMAS}/{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")]
        lines.append(f"include {folder}/ad.schema")
        lines += [f"pidfile {folder}/slapd.pid", f"modulepath {MODULES}", "moduleload back_mdb"]
        urls = f"ldap://127.0.0.1:{self.port}/"
        if tls is not None:
            certificate, ca_file = tls
            (folder / "server.crt").write_text(certificate.certificate)
            (folder / "server.key").write_text(certificate.key)
            lines += [f"TLSCertificateFile {folder}/server.crt", f"TLSCertificateKeyFile {folder}/server.key",
                      f"TLSCACertificateFile {ca_file}"]
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        lines += ["database mdb", 'suffix "dc=lab"', f'rootdn "{_ROOT_DN}"', f"rootpw {_ROOT_PW}",
                  f"directory {folder}/db", "maxsize 10485760"]
        (folder / "slapd.conf").write_text("\n".join(lines) + "\n")
        self._log = open(folder / "slapd.log", "wb")
        # -d: stay in the foreground (no fork), so the test owns the process and stops it.
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-f", str(folder / "slapd.conf"), "-h", urls],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._wait()
        self._fill()

    def log(self) -> str:
        return (self.folder / "slapd.log").read_text(errors="replace")

    def _wait(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"slapd did not listen in 20 s:\n{self.log()}")

    def _fill(self):
        import ldap3

        conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=self.port), user=_ROOT_DN, password=_ROOT_PW,
                                auto_bind=True)
        entries = [
            ("dc=lab", ["dcObject", "organization"], {"dc": "lab", "o": "Lab"}),
            (PEOPLE, ["organizationalUnit"], {"ou": "people"}),
            ("ou=groups,dc=lab", ["organizationalUnit"], {"ou": "groups"}),
            (READER_DN, ["person"], {"cn": "reader", "sn": "reader", "userPassword": PASSWORDS["reader"]}),
            (ALICE_DN, ["inetOrgPerson"], {"cn": "Alice Smith", "sn": "Smith", "uid": "alice",
                                            "userPassword": PASSWORDS["alice"]}),
            (BOB_DN, ["inetOrgPerson"], {"cn": "Bob Jones", "sn": "Jones", "uid": "bob",
                                          "userPassword": PASSWORDS["bob"]}),
            # extensibleObject lets an inetOrgPerson carry Active Directory's sAMAccountName.
            (CAROL_DN, ["inetOrgPerson", "extensibleObject"],
             {"cn": "Carol Chen", "sn": "Chen", "uid": "carol", "sAMAccountName": "CChen",
              "userPassword": PASSWORDS["carol"]}),
            (GPU_GROUP, ["groupOfNames"], {"cn": "gpu", "member": [ALICE_DN, CAROL_DN]}),
            (CPU_GROUP, ["groupOfNames"], {"cn": "cpu", "member": [BOB_DN]}),
        ]
        for dn, classes, attributes in entries:
            if not conn.add(dn, classes, attributes):
                raise RuntimeError(f"slapd refused {dn}: {conn.result}")
        conn.unbind()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
