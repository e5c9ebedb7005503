#!/usr/bin/env python3
"""End-to-end: system accounts through PAM (indexer config pam { }), with poplib via popd.

The PAM service file lives in the test's temp dir (pam { config_dir } -> pam_start_confdir;
/etc/pam.d is never touched): pam_exec runs a script that reads the password on stdin and
accepts only sysuser's right password. The name sysuser is not in the indexer's store, so its
login goes to PAM and its mailbox is the spool's file of that name. Checked: the right password
over USER/PASS and SASL PLAIN reads the mail byte-exact; a wrong password and an unknown user
get the same -ERR [AUTH] line; a store account still logs in by its own password; and the
password never reaches a log.

usage: popd_pam_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

SECRET = "pam-Secret-42"


def pam_setup(root):
    script = os.path.join(root, "check.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                "pw=$(tr -d '\\000')\n"
                f"[ \"$PAM_USER\" = sysuser ] && [ \"$pw\" = '{SECRET}' ]\n")
    os.chmod(script, 0o700)
    confdir = os.path.join(root, "pam.d")
    os.mkdir(confdir)
    with open(os.path.join(confdir, "poplar-e2e"), "w") as f:
        f.write(f"auth [success=1 default=ignore] pam_exec.so quiet expose_authtok {script}\n"
                "auth requisite pam_deny.so\n"
                "auth required pam_permit.so\n"
                "account required pam_permit.so\n")
    return confdir


def configure_pam(env):
    confdir = pam_setup(env.root)
    with open(env.indexer.config, "a") as f:
        f.write(f'pam {{ service: "poplar-e2e" config_dir: "{confdir}" threads: 2 }}\n')


def body(env, c):
    env.indexer.add_account("alice", "alice pw")
    env.genmbox("alice", 2)
    env.genmbox("sysuser", 5, seed=7)
    want = h.expected_messages(env.indexer.mailbox("sysuser"))

    p = h.login(env.popd.port, "sysuser", SECRET)
    count, _ = p.stat()
    c.check(f"right password: PAM login, the spool's sysuser mailbox ({count} messages)", count == 5)
    _, lines, _ = p.retr(3)
    c.check("RETR 3 byte-exact", b"\r\n".join(lines) + b"\r\n" == want[2])
    p.quit()

    raw = h.Raw(env.popd.port)
    raw.line()
    token = base64.b64encode(b"\0sysuser\0" + SECRET.encode()).decode()
    reply = raw.cmd(f"AUTH PLAIN {token}")
    c.check(f"SASL PLAIN goes through PAM too ({reply!r})", reply.startswith(b"+OK"))
    raw.cmd("QUIT")
    raw.close()

    wrong = h.login_reply(env.popd.port, "sysuser", "not the password")
    unknown = h.login_reply(env.popd.port, "nosuchuser", SECRET)
    c.check(f"wrong password: -ERR [AUTH] ({wrong!r})", wrong.startswith(b"-ERR [AUTH]"))
    c.check(f"unknown user: the same reply ({unknown!r})", unknown == wrong)

    p = h.login(env.popd.port, "alice", "alice pw")
    c.check("a store account still logs in", p.stat()[0] == 2)
    p.quit()
    c.check("PAM login to alice with sysuser's password fails",
            h.login_reply(env.popd.port, "alice", SECRET).startswith(b"-ERR [AUTH]"))
    logs = env.indexer.log_text(1 << 20) + env.popd.log_text(1 << 20)
    c.check("no password in the logs", SECRET not in logs and "not the password" not in logs)


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-pam-", body, before_start=configure_pam))
