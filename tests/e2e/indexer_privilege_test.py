#!/usr/bin/env python3
"""End-to-end: poplar-indexer drops its privileges (run_as { } in indexer.conf).

Started as root (the test needs root, as CI runs it; it skips otherwise), the indexer becomes
the configured user before it opens anything. Checked from /proc/PID/status while it runs:
in every thread, every uid and gid, the supplementary groups and the capability sets (effective, permitted,
bounding, ambient) are exactly what the config says; and it still serves a POP3 session
through popd and an expunge (DELE + QUIT rewrites the mailbox). Three spools:
  * Debian's (/var/mail-like root:mail 2775, mailbox 0660 group mail): group mail, no
    capability at all;
  * mailboxes only root may read (0600, spool 0755): keep_capabilities CAP_DAC_OVERRIDE;
  * the same 0600 mailbox without the capability: the login is refused -- the drop is real.
The database and journals live in a state directory the user owns; the socket's directory is
created by the indexer (as root) and given to the user.

usage: indexer_privilege_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import pwd
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

CAP_DAC_OVERRIDE = 1 << 1


def setup(args, name, run_as, mailbox_mode, spool_mode, spool_gid):
    env = h.Env(args, f"poplar-indexer-priv-{name}-")
    os.chmod(env.root, 0o755)  # nobody must reach the spool and the state
    nobody = pwd.getpwnam("nobody")
    state = os.path.join(env.root, "state")
    os.mkdir(state, 0o750)
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    sock = os.path.join(env.root, "run", "indexer.sock")  # run/ is created by the indexer
    for path in (env.indexer.config, env.popd.config):
        text = open(path).read().replace(env.indexer.socket, sock)
        text = text.replace(os.path.join(env.root, "index.sqlite"), os.path.join(state, "index.sqlite"))
        with open(path, "w") as f:
            f.write(text)
    env.indexer.socket = sock
    with open(env.indexer.config, "a") as f:
        f.write(f"run_as {{ {run_as} }}\n")
    os.chown(env.indexer.spool, 0, spool_gid)
    os.chmod(env.indexer.spool, spool_mode)
    path = env.genmbox("alice", 6)
    os.chown(path, 0, spool_gid)
    os.chmod(path, mailbox_mode)
    env.indexer.start()
    env.indexer.add_account("alice", "alice pw")
    env.popd.start()
    return env


def serves_and_expunges(env, c, label):
    want = h.expected_messages(env.indexer.mailbox("alice"))
    p = h.login(env.popd.port, "alice", "alice pw")
    _, lines, _ = p.retr(2)
    c.check(f"{label}: a session works (RETR byte-exact)", b"\r\n".join(lines) + b"\r\n" == want[1])
    p.dele(1)
    p.quit()
    p = h.login(env.popd.port, "alice", "alice pw")
    count, _ = p.stat()
    _, lines, _ = p.retr(1)
    p.quit()
    c.check(f"{label}: the expunge rewrote the mailbox ({count} of 6 left, the old 2nd now 1st)",
            count == 5 and b"\r\n".join(lines) + b"\r\n" == want[1]
            and len(h.expected_messages(env.indexer.mailbox("alice"))) == 5)


def main():
    args = h.arg_parser(__doc__).parse_args()
    c = h.Checks()
    if os.geteuid() != 0:  # run as root by CI
        c.skip("indexer privilege drop", "needs root")
        return c.summary()
    nobody, nogroup, mail = h.unprivileged_ids()
    envs = []
    try:
        # 1. A Debian spool: group mail is all it takes.
        env = setup(args, "mail", 'user: "nobody" group: "mail"', 0o660, 0o2775, mail)
        envs.append(env)
        got = h.proc_status(env.indexer.proc.pid)
        c.check(f"mail: every thread ({len(os.listdir(f'/proc/{env.indexer.proc.pid}/task'))}) "
                "has the same ids and capabilities", got is not None)
        c.check(f"mail: uids are all nobody ({got['Uid']})", got["Uid"] == [nobody] * 4)
        c.check(f"mail: gids are all mail ({got['Gid']})", got["Gid"] == [mail] * 4)
        c.check(f"mail: no supplementary groups ({got['Groups']})", got["Groups"] == [])
        caps = {k: got[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        c.check(f"mail: no capability in any set ({caps})", all(v == 0 for v in caps.values()))
        c.check("mail: the drop is logged", "running as nobody (uid" in env.indexer.log_text())
        db = os.stat(os.path.join(env.root, "state", "index.sqlite"))
        c.check("mail: the database belongs to nobody", db.st_uid == nobody)
        c.check("mail: the socket's directory was given to nobody",
                os.stat(os.path.dirname(env.indexer.socket)).st_uid == nobody)
        serves_and_expunges(env, c, "mail")
        env.popd.stop()
        env.indexer.stop()

        # 2. Mailboxes only root can read: CAP_DAC_OVERRIDE and nothing else.
        env = setup(args, "dac", 'user: "nobody" group: "nogroup" keep_capabilities: "CAP_DAC_OVERRIDE"',
                    0o600, 0o755, 0)
        envs.append(env)
        got = h.proc_status(env.indexer.proc.pid)
        c.check("dac: every thread has the same ids and capabilities", got is not None)
        c.check(f"dac: uids nobody, gids nogroup ({got['Uid']}, {got['Gid']})",
                got["Uid"] == [nobody] * 4 and got["Gid"] == [nogroup] * 4)
        c.check(f"dac: effective and permitted are CAP_DAC_OVERRIDE only "
                f"({got['CapEff']:#x}, {got['CapPrm']:#x})",
                got["CapEff"] == CAP_DAC_OVERRIDE and got["CapPrm"] == CAP_DAC_OVERRIDE)
        c.check(f"dac: bounding set CAP_DAC_OVERRIDE only, nothing inheritable or ambient "
                f"({got['CapBnd']:#x})",
                got["CapBnd"] == CAP_DAC_OVERRIDE and got["CapInh"] == 0 and got["CapAmb"] == 0)
        c.check("dac: the log names the capability", "capabilities CAP_DAC_OVERRIDE" in env.indexer.log_text())
        serves_and_expunges(env, c, "dac")
        env.popd.stop()
        env.indexer.stop()

        # 3. The same mailbox without the capability: nobody may not read it.
        env = setup(args, "nocap", 'user: "nobody" group: "nogroup"', 0o600, 0o755, 0)
        envs.append(env)
        reply = h.login_reply(env.popd.port, "alice", "alice pw")
        c.check(f"nocap: the 0600 mailbox is out of reach ({reply!r})", reply.startswith(b"-ERR [SYS/PERM]"))
        env.popd.stop()
        env.indexer.stop()

        # Refused configurations.
        for bad, why in (('run_as { user: "root" }', "unprivileged user"),
                         ('run_as { user: "nobody" keep_capabilities: "CAP_SETUID" }', "cannot be kept")):
            h.check_run_as_refused(c, args.indexer, env.indexer.config, bad, why, "--check-config")
        h.check_run_as_refused(c, args.indexer, env.indexer.config, 'run_as { user: "no-such-user-xyz" }',
                               "does not exist")  # only at start: --check-config does not look it up
    except Exception as e:
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        for env in envs:
            env.popd.stop()
            env.indexer.stop()
        h._stop_all()
        for env in envs:
            env.cleanup(c.failed > 0)
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
