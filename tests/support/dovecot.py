"""A real Dovecot IMAP server for tests, in a temporary directory, on a loopback port.

Plaintext login on 127.0.0.1 (no TLS: nothing leaves the machine), one passwd-file user,
Maildir under the temporary directory. Started as root, Dovecot drops to its own system
user ("dovecot"), who owns the mail; as another user it runs as that user.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.services import free_port, port_open, wait_until

DOVECOT = "/usr/sbin/dovecot"


def dovecot_available() -> bool:
    return Path(DOVECOT).exists()


class Dovecot:
    def __init__(self, user: str = "shop@trust.store", password: str = "imap-secret") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trustdesk-dovecot-"))
        self.root.chmod(0o755)
        self.user, self.password = user, password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("dovecot")
            uid, gid = pw.pw_uid, pw.pw_gid
            internal, login = "dovecot", "dovenull"
        else:
            uid, gid = os.getuid(), os.getgid()
            internal = login = pwd.getpwuid(uid).pw_name
        mail = self.root / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        (self.root / "passwd").write_text(
            f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{mail}/{user}::\n"
        )
        self.config = self.root / "dovecot.conf"
        self.config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
info_log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
first_valid_uid = {uid}
last_valid_uid = 0
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        )

    def start(self) -> Dovecot:
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 15, "dovecot's IMAP port")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None
        wait_until(lambda: not port_open(self.port), 15, "dovecot to stop")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self, folder: str = "INBOX", poll_seconds: float = 1.0) -> dict[str, str]:
        """The server's settings for this mailbox."""
        return {
            "TRUSTDESK_IMAP_HOST": "127.0.0.1",
            "TRUSTDESK_IMAP_PORT": str(self.port),
            "TRUSTDESK_IMAP_USER": self.user,
            "TRUSTDESK_IMAP_PASSWORD": self.password,
            "TRUSTDESK_IMAP_TLS": "none",
            "TRUSTDESK_IMAP_FOLDER": folder,
            "TRUSTDESK_IMAP_POLL_SECONDS": str(poll_seconds),
        }

    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail as a mail server would: APPEND over IMAP."""
        c = self.client()
        try:
            typ, data = c.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            assert typ == "OK", data
        finally:
            c.logout()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        c = self.client()
        try:
            c.select(folder)
            _, data = c.response("UIDVALIDITY")
            return int(data[0])
        finally:
            c.logout()

    def seen(self, folder: str = "INBOX") -> int:
        """How many messages carry \\Seen."""
        c = self.client()
        try:
            c.select(folder)
            typ, data = c.search(None, "SEEN")
            assert typ == "OK"
            return len(data[0].split())
        finally:
            c.logout()
