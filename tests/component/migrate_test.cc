// poplarctl migrate config (the Qpopper config translator) and migrate check (UIDLs that would
// change), against the qpopper.config examples in tests/testdata/qpopper and real mbox files.
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/mbox/qpopper_uidl.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "indexer/indexer_config.h"
#include "popd/popd_config.h"
#include "tests/component/temp_dir.h"
#include "tools/poplarctl/migrate_check.h"
#include "tools/poplarctl/migrate_config.h"

namespace poplar::poplarctl {
namespace {

using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

std::optional<std::string> ReadTestdata(const std::string& name) {
  std::ifstream in(absl::StrCat(POPLAR_TESTDATA, "/qpopper/", name), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Translation Translate(const std::string& file, const std::vector<std::string>& flags = {}) {
  std::optional<std::string> text = ReadTestdata(file);
  EXPECT_TRUE(text.has_value()) << file;
  absl::StatusOr<Translation> t = TranslateQpopperConfig(text.value_or(""), flags, ReadTestdata);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Translation{};
}

// What `migrate config` prints must load as the daemons load their files.
void ExpectValidConfigs(const Translation& t) {
  const std::string rendered = RenderTranslation(t);
  const size_t popd_at = rendered.find("# ==== poplar-popd");
  const size_t report_at = rendered.find("# ==== Qpopper options");
  ASSERT_NE(popd_at, std::string::npos);
  ASSERT_NE(report_at, std::string::npos);
  config::IndexerConfig indexer;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(rendered.substr(0, popd_at), &indexer));
  indexer::ApplyDefaults(&indexer);
  EXPECT_TRUE(indexer::Validate(indexer).ok()) << indexer::Validate(indexer);
  config::PopdConfig popd;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      rendered.substr(popd_at, report_at - popd_at), &popd));
  EXPECT_TRUE(popd::Validate(popd).ok()) << popd::Validate(popd);
}

const TranslationNote* Note(const Translation& t, const std::string& option) {
  for (const TranslationNote& n : t.notes) {
    if (n.option == option) return &n;
  }
  return nullptr;
}

// Every option of qpopper.md §5.
const std::vector<std::string> kAllOptions = {"announce-expire",
                                              "announce-login-delay",
                                              "auth-file",
                                              "nonauth-file",
                                              "auto-delete",
                                              "bulldir",
                                              "bulldb-max-tries",
                                              "bulldb-nonfatal",
                                              "cache-dir",
                                              "cache-name",
                                              "check-hash-dir",
                                              "check-old-spool-loc",
                                              "check-password-expired",
                                              "chunky-writes",
                                              "clear-text-password",
                                              "config-file",
                                              "debug",
                                              "tracefile",
                                              "downcase-user",
                                              "drac-host",
                                              "fast-update",
                                              "group-bulletins",
                                              "group-server-mode",
                                              "group-no-server-mode",
                                              "hash-spool",
                                              "home-dir-mail",
                                              "keep-temp-drop",
                                              "kerberos",
                                              "kerberos-service",
                                              "log-facility",
                                              "log-login",
                                              "mail-command",
                                              "mail-lock-check",
                                              "max-bulletins",
                                              "no-atomic-open",
                                              "old-style-uid",
                                              "reverse-lookup",
                                              "server-mode",
                                              "shy",
                                              "spool-dir",
                                              "temp-dir",
                                              "temp-name",
                                              "spool-options",
                                              "user-options",
                                              "statistics",
                                              "timeout",
                                              "timing",
                                              "tls-support",
                                              "tls-version",
                                              "tls-cipher-list",
                                              "tls-identity-file",
                                              "tls-server-cert-file",
                                              "tls-private-key-file",
                                              "tls-passphrase",
                                              "tls-options",
                                              "tls-workarounds",
                                              "trim-domain",
                                              "update-on-abort",
                                              "update-status-headers",
                                              "uw-kluge",
                                              "uw-kludge"};

TEST(MigrateConfigTest, TheExamplesCoverEveryOptionAndTranslateToValidConfigs) {
  std::set<std::string> seen;
  const std::vector<std::string> flags =
      absl::StrSplit(absl::StripAsciiWhitespace(ReadTestdata("inetd-flags.txt").value_or("")), ' ',
                     absl::SkipEmpty());
  for (const auto& [file, f] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"isp.config", {}}, {"campus.config", {}}, {"campus.config", flags}}) {
    Translation t = Translate(file, f);
    ExpectValidConfigs(t);
    for (const TranslationNote& n : t.notes) {
      EXPECT_FALSE(n.text.empty()) << n.option;
      seen.insert(n.option);
    }
  }
  for (const std::string& o : kAllOptions) EXPECT_TRUE(seen.count(o)) << o << " not covered";
}

TEST(MigrateConfigTest, IspExample) {
  Translation t = Translate("isp.config");
  EXPECT_EQ(t.indexer.spools(0).directory(), "/var/spool/mail");
  EXPECT_EQ(t.indexer.spools(0).layout(), config::SPOOL_HASHED_2);
  Translation one = Translate("campus.config", {"-S"});
  EXPECT_EQ(
      TranslateQpopperConfig("set hash-spool = 1\n", {}, ReadTestdata)->indexer.spools(0).layout(),
      config::SPOOL_HASHED_QPOPPER);
  EXPECT_EQ(t.indexer.uidl().scheme(), "qpopper");
  EXPECT_TRUE(t.indexer.uidl().qpopper().server_mode());
  EXPECT_EQ(t.popd.listen().implicit_tls_address(), "0.0.0.0:995");
  EXPECT_EQ(t.popd.tls().certificate_chain_file(), "/etc/ssl/certs/pop.pem");
  EXPECT_EQ(t.popd.tls().private_key_file(), "/etc/ssl/private/pop.key");
  EXPECT_EQ(t.popd.plaintext_auth_networks_size(), 0);  // clear-text-password = tls
  EXPECT_EQ(t.popd.limits().autologout_s(), 600u);
  ASSERT_NE(Note(t, "tls-passphrase"), nullptr);
  EXPECT_FALSE(Note(t, "tls-passphrase")->mapped);
  EXPECT_TRUE(Note(t, "cache-dir")->mapped);
}

TEST(MigrateConfigTest, CampusExampleWithIncludeAndFlags) {
  Translation t = Translate("campus.config");
  // The included file's old-style-uid wins over the earlier `set old-style-uid = false`.
  EXPECT_TRUE(t.indexer.uidl().qpopper().old_style_uid());
  EXPECT_TRUE(t.indexer.uidl().qpopper().update_status_headers());
  EXPECT_EQ(t.indexer.spools(0).layout(), config::SPOOL_HOME);
  EXPECT_EQ(t.indexer.spools(0).home_mailbox(), "Mailbox");
  EXPECT_TRUE(t.indexer.has_pam());
  EXPECT_EQ(t.popd.tls().certificate_chain_file(), "/etc/ssl/private/pop-identity.pem");
  EXPECT_EQ(t.popd.listen().implicit_tls_address(), "");
  EXPECT_EQ(t.popd.plaintext_auth_networks(0), "127.0.0.0/8");
  EXPECT_FALSE(Note(t, "uw-kludge")->mapped);

  const std::vector<std::string> flags =
      absl::StrSplit(absl::StripAsciiWhitespace(ReadTestdata("inetd-flags.txt").value_or("")), ' ',
                     absl::SkipEmpty());
  Translation f = Translate("campus.config", flags);
  EXPECT_TRUE(f.indexer.uidl().qpopper().server_mode());      // -S
  EXPECT_EQ(f.popd.plaintext_auth_networks(0), "0.0.0.0/0");  // -p 2 (always)
  EXPECT_EQ(f.popd.limits().autologout_s(), 900u);            // -T 900
  EXPECT_EQ(f.popd.listen().address(), "0.0.0.0:1110");
  EXPECT_EQ(f.popd.tls().certificate_chain_file(), "/etc/ssl/certs/pop.pem");  // -f file
  EXPECT_EQ(Note(f, "announce-expire")->value, "never");
}

TEST(MigrateConfigTest, QpopperWouldRejectItSoDoWe) {
  const std::vector<std::string> kBad = {"set no-such-option = 1\n", "set timeout = soon\n",
                                         "frobnicate timeout\n", "set spool-dir\n",
                                         "set server-mode = maybe\n"};
  for (const std::string& text : kBad) {
    EXPECT_FALSE(TranslateQpopperConfig(text, {}, ReadTestdata).ok()) << text;
  }
  EXPECT_FALSE(TranslateQpopperConfig("", {"-Z"}, ReadTestdata).ok());
  EXPECT_FALSE(TranslateQpopperConfig("", {"-T"}, ReadTestdata).ok());
}

// ---- migrate check

std::string From(int i) {
  return absl::StrCat("From u", i, "@example.org Thu Nov 29 22:33:5", i % 10, " 2001\n");
}

TEST(MigrateCheckTest, CountsWhatWouldChange) {
  TempDir dir;
  const std::string header1 = "Subject: one\nMessage-Id: <1@x>\n";
  const std::string dup = From(1) + header1 + "\nbody\n\n";
  WriteFile(dir.File("alice"),
            dup + dup + From(2) + "X-UIDL: 0123456789abcdef\nSubject: two\n\nb\n\n");
  WriteFile(dir.File("bob"), "");
  WriteFile(dir.File("alice.lock"), "123\n");
  WriteFile(dir.File("notes.txt"), "not a mailbox\n");

  MigrateCheckOptions o;
  o.from = "qpopper";
  absl::StatusOr<std::vector<std::string>> paths = MailboxesOf(dir.path(), o);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_EQ(*paths, (std::vector<std::string>{dir.File("alice"), dir.File("bob")}));

  absl::StatusOr<MailboxCheck> c = CheckMailbox(dir.File("alice"), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->messages, 3u);
  EXPECT_EQ(c->x_uidl, 1u);
  EXPECT_EQ(c->duplicates, 1u);
  EXPECT_EQ(c->changed, 1u);  // the second copy: Qpopper served the same UIDL twice
  ASSERT_EQ(c->examples.size(), 1u);
  const std::string gen = mbox::ComputeQpopperUidl(From(1), header1, {}).generated;
  EXPECT_EQ(c->examples[0].old_uidl, gen);
  EXPECT_EQ(c->examples[0].new_uidl, gen + "-2");
  EXPECT_EQ(c->changed_default_scheme, 2u);  // Poplar's digest differs for both copies

  std::ostringstream out, err;
  EXPECT_EQ(RunMigrateCheck({"--from", "qpopper", dir.path()}, out, err), 4);
  EXPECT_NE(out.str().find("total: 2 mailboxes, 3 messages, 1 UIDLs would change"),
            std::string::npos)
      << out.str();
  std::ostringstream out2;
  EXPECT_EQ(RunMigrateCheck({"--from=qpopper", "--spool", dir.path(), "bob"}, out2, err), 0);
  EXPECT_EQ(RunMigrateCheck({"--from", "exchange"}, out2, err), 2);
}

TEST(MigrateCheckTest, XUidlsQpopperWroteShowItsVariant) {
  TempDir dir;
  // Qpopper with old-style-uid rewrote this spool: its X-UIDLs are 32 hex digits.
  const std::string hex = "X-UIDL: 0123456789abcdef0123456789abcdef\nSubject: a\n\nb\n\n";
  WriteFile(dir.File("erin"), From(1) + hex + From(2) + hex.substr(0, 8) + "f" + hex.substr(9));
  std::ostringstream out, err;
  // The old-style X-UIDL line is 33 bytes with its newline: only server mode's window takes it.
  EXPECT_EQ(RunMigrateCheck({"--from", "qpopper", "--server-mode", dir.File("erin")}, out, err), 0);
  EXPECT_NE(out.str().find("2 X-UIDL, but 2 of them are 32 hex digits"), std::string::npos)
      << out.str();
  std::ostringstream out2;
  EXPECT_EQ(
      RunMigrateCheck({"--from", "qpopper", "--server-mode", "--old-style-uid", dir.File("erin")},
                      out2, err),
      0);
  EXPECT_EQ(out2.str().find("but"), std::string::npos) << out2.str();
}

TEST(MigrateCheckTest, Dovecot) {
  TempDir dir;
  WriteFile(dir.File("carol"),
            From(1) + "X-IMAPbase: 1234567890 0000000003\nX-UID: 1\nSubject: a\n\nb\n\n" + From(2) +
                "X-UID: 2\nSubject: b\n\nb\n\n" + From(3) + "Subject: c\n\nb\n");
  MigrateCheckOptions o;
  o.from = "dovecot";
  absl::StatusOr<MailboxCheck> c = CheckMailbox(dir.File("carol"), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->messages, 3u);
  EXPECT_EQ(c->changed, 0u);
  EXPECT_EQ(c->unknown, 1u);
  EXPECT_EQ(c->changed_default_scheme, 2u);
}

}  // namespace
}  // namespace poplar::poplarctl
