#!/usr/bin/env python3
"""End-to-end: poplar-popd drops its privileges after binding (run_as { }).

Started as root (the test needs root, as CI runs it; it skips otherwise) with
run_as { user: "nobody" group: "nogroup" extra_groups: "mail" }: after start-up /proc shows
every uid as nobody, every gid as nogroup and only the group mail beside it; sessions work
(the indexer's socket is group nogroup here, as it would be group mail on a real host); a
config naming root, or a user that does not exist, is refused at start. A symlinked or a
foreign-owned mailbox is refused at login (-ERR [SYS/PERM]) with one clear indexer log line.

usage: popd_privilege_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import poplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402


def refused_mailboxes(env, c):
    """A symlinked and a foreign-owned mailbox: the login gets -ERR [SYS/PERM], the indexer
    logs one line naming the path and the reason, and the owner's own mailbox still works."""
    env.indexer.add_account("bob", "bob pw")
    env.indexer.add_account("carol", "carol pw")
    bob = env.indexer.mailbox("bob")
    carol = env.genmbox("carol", 2)
    os.symlink(env.indexer.mailbox("alice"), bob)  # bob's name, alice's mail
    os.chown(carol, 54321, -1)                      # a file someone else owns
    for user, path, why in (("bob", bob, "is a symbolic link"),
                            ("carol", carol, "owned by uid 54321, expected")):
        reply = h.login_reply(env.popd.port, user, f"{user} pw")
        c.check(f"{user}: login refused with -ERR [SYS/PERM] ({reply!r})",
                reply.startswith(b"-ERR [SYS/PERM]"))
        want = f"login {user}: mailbox {path} refused: {why}"
        lines = [l for l in env.indexer.log_text(100000).splitlines() if want in l]
        c.check(f"{user}: the indexer logs it in one line ({want!r})", len(lines) == 1,
                env.indexer.log_text()[-800:])
        c.check(f"{user}: no password in the log", f"{user} pw" not in env.indexer.log_text(100000))
    os.chown(carol, 0, -1)
    p = h.login(env.popd.port, "carol", "carol pw")
    c.check("carol: served again once the file is hers", p.stat()[0] == 2)
    p.quit()


def main():
    args = h.arg_parser(__doc__).parse_args()
    c = h.Checks()
    if os.geteuid() != 0:
        c.skip("privilege drop", "needs root")
        return c.summary()
    nobody, nogroup, mail = h.unprivileged_ids()
    env = h.Env(args, "poplar-popd-priv-")
    os.chmod(env.root, 0o755)  # nobody must reach the socket and the spool
    try:
        env.indexer.start()
        env.indexer.add_account("alice", "alice pw")
        env.genmbox("alice", 4)
        os.chown(env.indexer.socket, 0, nogroup)
        with open(env.popd.config, "a") as f:
            f.write('run_as { user: "nobody" group: "nogroup" extra_groups: "mail" }\n')
        env.popd.start()
        got = h.proc_status(env.popd.proc.pid)
        c.check(f"uids are all nobody ({got['Uid']})", got["Uid"] == [nobody] * 4)
        c.check(f"gids are all nogroup ({got['Gid']})", got["Gid"] == [nogroup] * 4)
        c.check(f"supplementary groups are just mail ({got['Groups']})", got["Groups"] == [mail])
        c.check("the drop is logged", "running as nobody" in env.popd.log_text())
        want = h.expected_messages(env.indexer.mailbox("alice"))
        p = poplib.POP3("127.0.0.1", env.popd.port, timeout=10)
        p.user("alice")
        p.pass_("alice pw")
        resp, lines, _ = p.retr(2)
        c.check("a session works after the drop (RETR byte-exact)",
                b"\r\n".join(lines) + b"\r\n" == want[1])
        p.quit()
        refused_mailboxes(env, c)
        env.popd.stop()
        for bad, why in (('run_as { user: "root" }', "unprivileged"),
                         ('run_as { user: "no-such-user-xyz" }', "does not exist")):
            h.check_run_as_refused(c, args.popd, env.popd.config, bad, why)
    except Exception as e:
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        env.popd.stop()
        env.indexer.stop()
        h._stop_all()
        env.cleanup(c.failed > 0)
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
