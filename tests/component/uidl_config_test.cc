// The UIDL part of poplar-indexer's configuration (issue 16): the "qpopper" scheme and its
// variants, X-UIDL trust, per-spool schemes; validation and the options the indexer gets.
#include <string>

#include "common/config/textproto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/indexer_config.h"

namespace poplar::indexer {
namespace {

using ::testing::HasSubstr;

config::IndexerConfig Parse(const std::string& text) {
  config::IndexerConfig c;
  absl::Status s = config::ParseTextProto(text, "test", &c);
  EXPECT_TRUE(s.ok()) << s;
  ApplyDefaults(&c);
  return c;
}

TEST(UidlConfig, QpopperSiteAndPerSpoolSchemes) {
  config::IndexerConfig c = Parse(R"pb(
    spools { directory: "/var/mail" }
    spools {
      directory: "/srv/dovecot/"
      uidl { scheme: "dovecot" }
    }
    spools {
      directory: "/srv/old"
      uidl {
        scheme: "qpopper"
        qpopper { old_style_uid: true }
        trust_x_uidl: true
      }
    }
    uidl {
      scheme: "qpopper"
      qpopper { server_mode: true content_length: false }
    }
  )pb");
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  mbox::UidlOptions o = UidlFromConfig(c);
  EXPECT_EQ(o.scheme, mbox::UidlScheme::kQpopper);
  EXPECT_TRUE(o.qpopper.server_mode);
  EXPECT_FALSE(o.qpopper.content_length);
  EXPECT_FALSE(o.qpopper.old_style);
  EXPECT_FALSE(o.trust_x_uidl);
  EXPECT_EQ(mbox::UidlOptionsForPath(o, "/var/mail/bob").scheme, mbox::UidlScheme::kQpopper);
  EXPECT_EQ(mbox::UidlOptionsForPath(o, "/srv/dovecot/carol").scheme, mbox::UidlScheme::kDovecot);
  const mbox::UidlOptions& old = mbox::UidlOptionsForPath(o, "/srv/old/a/dave");
  EXPECT_EQ(old.scheme, mbox::UidlScheme::kQpopper);
  EXPECT_TRUE(old.qpopper.old_style);
  EXPECT_TRUE(old.trust_x_uidl);
}

TEST(UidlConfig, DefaultsKeepPoplarsScheme) {
  config::IndexerConfig c = Parse(R"pb(spools { directory: "/var/mail" })pb");
  mbox::UidlOptions o = UidlFromConfig(c);
  EXPECT_EQ(o.scheme, mbox::UidlScheme::kPoplar);
  EXPECT_TRUE(o.reuse_x_uidl);
  EXPECT_FALSE(o.trust_x_uidl);
  EXPECT_EQ(o.per_spool, nullptr);
}

TEST(UidlConfig, BadUidlSettingsAreRefused) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case kCases[] = {
      {R"pb(uidl { scheme: "qpoper" })pb", "uidl.scheme must be"},
      {R"pb(uidl {
              scheme: "poplar"
              qpopper { old_style_uid: true }
            })pb",
       "uidl.qpopper is set but uidl.scheme is \"poplar\""},
      {R"pb(uidl { reuse_x_uidl: false trust_x_uidl: true })pb",
       "uidl.trust_x_uidl needs uidl.reuse_x_uidl"},
      {R"pb(spools {
              directory: "/srv/x"
              uidl { scheme: "uw" }
            })pb",
       "spools[1].uidl.scheme"},
  };
  for (const Case& k : kCases) {
    config::IndexerConfig c =
        Parse(std::string(R"pb(spools { directory: "/var/mail" })pb") + k.text);
    absl::Status s = Validate(c);
    EXPECT_FALSE(s.ok()) << k.text;
    EXPECT_THAT(std::string(s.message()), HasSubstr(k.error)) << k.text;
  }
}

}  // namespace
}  // namespace poplar::indexer
