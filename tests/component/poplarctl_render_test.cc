// poplarctl's output (tools/poplarctl/render.h): tables, JSON, paging, progress and error lines.
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tools/poplarctl/render.h"

namespace poplar::poplarctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Account MakeAccount(const std::string& user, const std::string& kind, int64_t created) {
  v1::Account a;
  a.set_user(user);
  a.set_mailbox("/var/mail/" + user);
  a.set_credential_kind(kind);
  a.set_created_unix(created);
  return a;
}

v1::MessageRow MakeRow(uint32_t number, uint64_t offset, uint64_t octets, const std::string& uidl) {
  v1::MessageRow m;
  m.set_number(number);
  m.set_offset(offset);
  m.set_octets(octets);
  m.set_lines(number * 3);
  m.set_uidl(uidl);
  m.set_sender("sender@example.org");
  m.set_date("Mon Nov 24 16:00:00 2025");
  return m;
}

TEST(Table, AlignsColumnsAndRightAlignsNumbers) {
  Table t({{"NAME"}, {"COUNT", true}, {"NOTE"}});
  t.AddRow({"a", "1", "x"});
  t.AddRow({"longer", "12345", ""});
  t.AddRow({"short"});  // padded with empty cells
  EXPECT_EQ(t.Render(),
            "NAME    COUNT  NOTE\n"
            "a           1  x\n"
            "longer  12345\n"
            "short\n");
}

TEST(Table, CountsCodePointsNotBytes) {
  Table t({{"USER"}, {"N", true}});
  t.AddRow({"jos\xc3\xa9", "1"});  // josé: 5 bytes, 4 columns
  t.AddRow({"anna", "2"});
  EXPECT_EQ(t.Render(),
            "USER  N\n"
            "jos\xc3\xa9  1\n"
            "anna  2\n");
}

TEST(Printable, EscapesControlCharacters) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"plain /var/mail/alice", "plain /var/mail/alice"},
      {"evil\x1b[2Jclear", "evil\\x1b[2Jclear"},
      {"two\nlines\r", "two\\x0alines\\x0d"},
      {"tab\there", "tab\\x09here"},
      {"del\x7f", "del\\x7f"},
      {"c1 \xc2\x9b"
       "31m",
       "c1 \\x9b31m"},                                       // U+009B, the 8-bit CSI
      {"caf\xc3\xa9 \xc2\xa0ok", "caf\xc3\xa9 \xc2\xa0ok"},  // é and NBSP stay
      {std::string("nul\0x", 5), "nul\\x00x"},
  };
  for (const Case& c : cases) EXPECT_EQ(Printable(c.in), c.want) << c.in;
}

TEST(Table, CellsArePrintable) {
  Table t({{"SENDER"}});
  t.AddRow({"x\x1b]0;owned\x07"});
  EXPECT_EQ(t.Render(), "SENDER\nx\\x1b]0;owned\\x07\n");
}

TEST(FormatUnix, Utc) {
  EXPECT_EQ(FormatUnixSeconds(0), "-");
  EXPECT_EQ(FormatUnixSeconds(1764000000), "2025-11-24T16:00:00Z");
  EXPECT_EQ(FormatUnixMillis(0), "-");
  EXPECT_EQ(FormatUnixMillis(1764000000999), "2025-11-24T16:00:00Z");
}

TEST(AccountsTable, Rows) {
  v1::AccountList list;
  *list.add_accounts() = MakeAccount("alice", "scram-sha-256", 1764000000);
  *list.add_accounts() = MakeAccount("bob", "crypt", 0);
  EXPECT_EQ(AccountsTable(list),
            "USER   MAILBOX          CREDENTIAL     CREATED\n"
            "alice  /var/mail/alice  scram-sha-256  2025-11-24T16:00:00Z\n"
            "bob    /var/mail/bob    crypt          -\n");
  EXPECT_EQ(AccountsTable(v1::AccountList()), "no accounts\n");
}

TEST(MailboxesTable, Rows) {
  v1::MailboxList list;
  v1::MailboxSummary* m = list.add_mailboxes();
  m->set_path("/var/mail/alice");
  m->set_user("alice");
  m->set_messages(12);
  m->set_octets(34567);
  m->set_file_size(34000);
  m->set_indexed_bytes(34000);
  m->set_indexed_unix_ms(1764000000000);
  v1::MailboxSummary* n = list.add_mailboxes();
  n->set_path("/var/mail/orphan");
  n->set_messages(1);
  n->set_octets(9);
  n->set_file_size(8);
  n->set_anomalies(2);
  EXPECT_EQ(MailboxesTable(list),
            "PATH              USER   MESSAGES  OCTETS  FILE SIZE  INDEXED  ANOMALIES  INDEXED AT\n"
            "/var/mail/alice   alice        12   34567      34000    34000          0  "
            "2025-11-24T16:00:00Z\n"
            "/var/mail/orphan                1       9          8        0          2  -\n");
  EXPECT_EQ(MailboxesTable(v1::MailboxList()), "no mailboxes\n");
}

v1::MailboxDetail Detail(uint32_t n) {
  v1::MailboxDetail d;
  d.mutable_summary()->set_path("/var/mail/alice");
  d.mutable_summary()->set_user("alice");
  d.mutable_summary()->set_messages(n);
  d.mutable_summary()->set_octets(100 * n);
  d.mutable_summary()->set_file_size(110 * n);
  d.mutable_summary()->set_indexed_bytes(110 * n);
  d.set_first(1);
  for (uint32_t i = 1; i <= n; ++i) {
    *d.add_messages() = MakeRow(i, 110 * (i - 1), 100, "uidl-" + std::to_string(i));
  }
  return d;
}

TEST(MailboxDetailText, SummaryThenMessages) {
  EXPECT_EQ(
      MailboxDetailText(Detail(2)),
      "mailbox     /var/mail/alice\n"
      "user        alice\n"
      "messages    2 (200 octets; 1-2 shown)\n"
      "file size   220 bytes, 220 indexed\n"
      "indexed at  -\n"
      "anomalies   0\n"
      "\n"
      "NUMBER  OFFSET  OCTETS  LINES  UIDL    SENDER              DATE\n"
      "     1       0     100      3  uidl-1  sender@example.org  Mon Nov 24 16:00:00 2025\n"
      "     2     110     100      6  uidl-2  sender@example.org  Mon Nov 24 16:00:00 2025\n");
  EXPECT_THAT(MailboxDetailText(Detail(0)), HasSubstr("0 (0 octets; none shown)"));
  EXPECT_THAT(MailboxDetailText(Detail(0)), Not(HasSubstr("NUMBER")));
}

TEST(PageOf, CutsByNumberAndLimit) {
  struct Case {
    uint32_t from, limit;
    std::vector<uint32_t> want;
    uint32_t first;
  };
  const Case cases[] = {
      {1, 0, {1, 2, 3, 4, 5}, 1},
      {3, 0, {3, 4, 5}, 3},
      {2, 2, {2, 3}, 2},
      {5, 10, {5}, 5},
      {6, 0, {}, 6},
      {1, 1, {1}, 1},
  };
  v1::MailboxDetail d = Detail(5);
  for (const Case& c : cases) {
    v1::MailboxDetail page = PageOf(d, c.from, c.limit);
    std::vector<uint32_t> got;
    for (const auto& m : page.messages()) got.push_back(m.number());
    EXPECT_EQ(got, c.want) << c.from << "," << c.limit;
    EXPECT_EQ(page.first(), c.first);
    EXPECT_EQ(page.summary().messages(), 5u);  // the summary is the whole mailbox's
  }
}

TEST(PagingGap, NotesWhatTheIndexerDidNotSend) {
  v1::MailboxDetail all = Detail(5);
  EXPECT_EQ(PagingGap(all, 1, 0), "");
  EXPECT_EQ(PagingGap(all, 2, 3), "");
  EXPECT_EQ(PagingGap(all, 5, 100), "");
  EXPECT_EQ(PagingGap(all, 6, 0), "");  // past the end: nothing to miss
  // The indexer caps its reply; the summary still counts the whole mailbox.
  v1::MailboxDetail capped = Detail(3);
  capped.mutable_summary()->set_messages(8);
  EXPECT_EQ(PagingGap(capped, 1, 3), "");
  EXPECT_EQ(PagingGap(capped, 1, 0), "the indexer sent messages 1-3 of 8; 1-8 were asked for");
  EXPECT_EQ(PagingGap(capped, 6, 2), "the indexer sent messages 1-3 of 8; 6-7 were asked for");
  v1::MailboxDetail none = Detail(0);
  none.mutable_summary()->set_messages(2);
  EXPECT_EQ(PagingGap(none, 1, 0), "the indexer sent no messages of 2; 1-2 were asked for");
}

TEST(StatusText, KeyValues) {
  v1::IndexerStatus s;
  s.set_mailboxes(3);
  s.set_messages(120);
  s.set_bytes(4096);
  s.set_index_lag_ms(15);
  s.set_last_rescan_unix_ms(1764000000000);
  s.set_sessions(1);
  s.set_version("0.1.0");
  EXPECT_EQ(StatusText(s),
            "version      0.1.0\n"
            "mailboxes    3\n"
            "messages     120\n"
            "bytes        4096\n"
            "index lag    15 ms\n"
            "last rescan  2025-11-24T16:00:00Z\n"
            "sessions     1\n");
}

TEST(SessionsTable, Rows) {
  v1::SessionList list;
  v1::SessionInfo* s = list.add_sessions();
  s->set_session_id("s-1");
  s->set_user("alice");
  s->set_mailbox("/var/mail/alice");
  s->set_client_address("192.0.2.7");
  s->set_front_end("popd-1");
  s->set_started_unix_ms(1764000000000);
  EXPECT_EQ(SessionsTable(list),
            "SESSION  USER   MAILBOX          CLIENT     FRONT END  STARTED\n"
            "s-1      alice  /var/mail/alice  192.0.2.7  popd-1     2025-11-24T16:00:00Z\n");
  EXPECT_EQ(SessionsTable(v1::SessionList()), "no sessions\n");
}

TEST(VerifyText, ProblemsAndSummary) {
  v1::VerifyReply ok;
  ok.set_mailboxes(1);
  ok.set_messages(12);
  EXPECT_EQ(VerifyText(ok), "verified 1 mailbox, 12 messages: no problems\n");
  v1::VerifyReply bad;
  bad.set_mailboxes(2);
  bad.set_messages(1);
  v1::VerifyProblem* p = bad.add_problems();
  p->set_path("/var/mail/bob");
  p->set_description("message 3: octets 120 in the index, 121 in the file");
  EXPECT_EQ(VerifyText(bad),
            "PATH           PROBLEM\n"
            "/var/mail/bob  message 3: octets 120 in the index, 121 in the file\n"
            "verified 2 mailboxes, 1 message: 1 problem\n");
}

TEST(AccountLine, OneLine) {
  EXPECT_EQ(AccountLine("added", MakeAccount("alice", "scram-sha-256", 1)),
            "added account alice (mailbox /var/mail/alice, scram-sha-256)\n");
}

TEST(ToJson, ProtoFieldNamesEveryFieldOneLine) {
  v1::AccountList list;
  *list.add_accounts() = MakeAccount("alice", "crypt", 0);
  std::string json = ToJson(list);
  EXPECT_EQ(json,
            "{\"accounts\":[{\"user\":\"alice\",\"mailbox\":\"/var/mail/alice\","
            "\"credential_kind\":\"crypt\",\"created_unix\":\"0\",\"apop\":false}]}\n");
  EXPECT_EQ(ToJson(v1::AccountList()), "{\"accounts\":[]}\n");
  EXPECT_EQ(ToJson(v1::Empty()), "{}\n");
}

TEST(ToJson, RoundTripsEveryReply) {
  v1::MailboxDetail detail = Detail(3);
  detail.mutable_messages(1)->set_sender("quote\" and \\ and \x01");
  v1::IndexerStatus status;
  status.set_bytes(UINT64_MAX);
  v1::VerifyReply verify;
  verify.add_problems()->set_path("/x");
  const google::protobuf::Message* messages[] = {&detail, &status, &verify};
  for (const google::protobuf::Message* m : messages) {
    std::string json = ToJson(*m);
    EXPECT_EQ(json.find('\n'), json.size() - 1) << json;  // one line
    std::unique_ptr<google::protobuf::Message> back(m->New());
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, back.get()).ok()) << json;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*m, *back)) << json;
  }
  EXPECT_THAT(ToJson(status), HasSubstr("\"bytes\":\"18446744073709551615\""));
  EXPECT_THAT(ToJson(status), HasSubstr("\"index_lag_ms\":\"0\""));
  EXPECT_THAT(ToJson(status), HasSubstr("\"version\":\"\""));
}

TEST(ProgressLine, CountsMegabytesAndPath) {
  v1::ReindexProgress p;
  p.set_mailboxes_done(3);
  p.set_mailboxes_total(10);
  p.set_bytes_done(12'500'000);
  p.set_bytes_total(80'000'000);
  EXPECT_EQ(ProgressLine(p, 0), "reindex: 3/10 mailboxes, 12.5/80.0 MB");
  p.set_current("/var/mail/alice");
  EXPECT_EQ(ProgressLine(p, 0), "reindex: 3/10 mailboxes, 12.5/80.0 MB, /var/mail/alice");
  EXPECT_EQ(ProgressLine(p, 200), "reindex: 3/10 mailboxes, 12.5/80.0 MB, /var/mail/alice");
  // Cut to the width, keeping the end of the path.
  std::string cut = ProgressLine(p, 50);
  EXPECT_EQ(cut, "reindex: 3/10 mailboxes, 12.5/80.0 MB, ...il/alice");
  EXPECT_EQ(cut.size(), 50u);
  EXPECT_EQ(ProgressLine(p, 20), "reindex: 3/10 mailbo");
  p.set_current("/var/mail/\x1b[31m");
  EXPECT_THAT(ProgressLine(p, 0), HasSubstr("/var/mail/\\x1b[31m"));
}

TEST(ReindexSummary, Plural) {
  v1::ReindexProgress p;
  p.set_mailboxes_done(1);
  p.set_bytes_done(1'000'000);
  EXPECT_EQ(ReindexSummary(p), "reindexed 1 mailbox, 1000000 bytes\n");
  p.set_mailboxes_done(0);
  p.set_bytes_done(0);
  EXPECT_EQ(ReindexSummary(p), "reindexed 0 mailboxes, 0 bytes\n");
  p.set_bytes_done(1);
  EXPECT_EQ(ReindexSummary(p), "reindexed 0 mailboxes, 1 byte\n");
  p.set_bytes_done(0);
  EXPECT_EQ(ReindexSummary(p), "reindexed 0 mailboxes, 0 bytes\n");
}

TEST(ErrorLine, NamesTheCommandAndTheCause) {
  struct Case {
    absl::Status status;
    std::optional<absl::Duration> timeout;
    std::string want;
  };
  const std::string target = "unix:/run/poplar/indexer.sock";
  const Case cases[] = {
      {absl::NotFoundError("no account \"zed\""), absl::Seconds(30),
       "poplarctl cmd: no account \"zed\" (NOT_FOUND)"},
      {absl::AlreadyExistsError("account alice exists"), absl::Seconds(30),
       "poplarctl cmd: account alice exists (ALREADY_EXISTS)"},
      {absl::InvalidArgumentError(""), absl::Seconds(30), "poplarctl cmd: INVALID_ARGUMENT"},
      {absl::FailedPreconditionError("two\nlines"), std::nullopt,
       "poplarctl cmd: two\\x0alines (FAILED_PRECONDITION)"},
      {absl::UnavailableError("no socket at /run/poplar/indexer.sock"), absl::Seconds(30),
       "poplarctl cmd: cannot reach the indexer at unix:/run/poplar/indexer.sock: no socket at "
       "/run/poplar/indexer.sock"},
      {absl::DeadlineExceededError("Deadline Exceeded"), absl::Seconds(30),
       "poplarctl cmd: the indexer at unix:/run/poplar/indexer.sock did not answer within 30s"},
      {absl::DeadlineExceededError("Deadline Exceeded"), absl::Milliseconds(1500),
       "poplarctl cmd: the indexer at unix:/run/poplar/indexer.sock did not answer within 1.5s"},
      {absl::DeadlineExceededError("lock wait"), std::nullopt,
       "poplarctl cmd: the indexer at unix:/run/poplar/indexer.sock did not answer in time: "
       "lock wait"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorLine("cmd", c.status, target, c.timeout), c.want) << c.status;
  }
}

}  // namespace
}  // namespace poplar::poplarctl
