#include "tools/poplarctl/migrate_config.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "tools/poplarctl/cli.h"

namespace poplar::poplarctl {
namespace {

enum class Kind { kBool, kInt, kString };

struct State {
  explicit State(Translation* translation) : t(translation) {}
  Translation* t;
  int tls_mode = 0;  // tls-support: 0 none, 1 alternate-port, 2 stls
  std::string tls_cert, tls_key, tls_identity;
  std::string listen = "0.0.0.0:110";
  int timeout_s = 120;  // Qpopper's compiled default
};

using Handler = void (*)(State&, const std::string& value, TranslationNote& note);

struct Option {
  std::string_view name;
  Kind kind;
  Handler handler;
};

void Mapped(TranslationNote& n, std::string text) {
  n.mapped = true;
  n.text = std::move(text);
}
void NoEquivalent(TranslationNote& n, std::string why) {
  n.mapped = false;
  n.text = std::move(why);
}

config::Uidl* Uidl(State& s) {
  config::Uidl* u = s.t->indexer.mutable_uidl();
  u->set_scheme("qpopper");
  return u;
}

config::Spool* Spool(State& s) {
  if (s.t->indexer.spools_size() == 0) s.t->indexer.add_spools()->set_directory("/var/mail");
  return s.t->indexer.mutable_spools(0);
}

bool Truthy(const std::string& v) { return v == "true" || v == "1" || v == "yes" || v == "on"; }

// The option table: every qpopper.config option of qpopper.md §5, with what it becomes.
const Option kOptions[] = {
    {"announce-expire", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "EXPIRE (announced and enforced) is not in popd's configuration yet "
                       "(issue 16, second half); Poplar will enforce what it announces");
     }},
    {"announce-login-delay", Kind::kInt,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "LOGIN-DELAY (announced and enforced) is not in popd's configuration yet "
                       "(issue 16, second half)");
     }},
    {"auth-file", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no allow-list option: accounts are the indexer's store or PAM; for PAM "
                       "use pam_listfile (item=user sense=allow) in /etc/pam.d/poplar");
     }},
    {"nonauth-file", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no deny-list option: use pam_listfile (item=user sense=deny) in "
                       "/etc/pam.d/poplar, or remove the account from the store");
     }},
    {"auto-delete", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "delete-after-retrieval is EXPIRE 0, not in popd's configuration yet "
                       "(issue 16, second half)");
     }},
    {"bulldir", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "bulletins are not implemented yet (issue 16, second half)");
     }},
    {"bulldb-max-tries", Kind::kInt,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no bulletin database: per-user bulletin state will live in the index");
     }},
    {"bulldb-nonfatal", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no bulletin database: per-user bulletin state will live in the index");
     }},
    {"group-bulletins", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "bulletins are not implemented yet (issue 16, second half)");
     }},
    {"max-bulletins", Kind::kInt,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "bulletins are not implemented yet (issue 16, second half)");
     }},
    {"cache-dir", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: the indexer's SQLite index (database_path) replaces .cache and is "
                 "kept current on every delivery");
     }},
    {"cache-name", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: the indexer's SQLite index (database_path) replaces .cache");
     }},
    {"check-hash-dir", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "Poplar never creates spool directories (it only reads and compacts "
                       "mailboxes): let the MDA create them");
     }},
    {"check-old-spool-loc", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: Poplar keeps no temp drop (.user.pop) anywhere");
     }},
    {"check-password-expired", Kind::kBool,
     [](State& s, const std::string& v, TranslationNote& n) {
       if (Truthy(v)) s.t->indexer.mutable_pam();
       Mapped(n, "pam { } : PAM's account step (pam_acct_mgmt, pam_unix) refuses expired "
                 "passwords");
     }},
    {"chunky-writes", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: popd always writes whole buffers (one write per reply batch)");
     }},
    {"clear-text-password", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       config::PopdConfig& p = s.t->popd;
       p.clear_plaintext_auth_networks();
       if (v == "always" || v == "default" || v == "0" || v == "2") {
         p.add_plaintext_auth_networks("0.0.0.0/0");
         p.add_plaintext_auth_networks("::/0");
         Mapped(n, v == "default" || v == "0"
                       ? "plaintext_auth_networks everywhere; Qpopper's default also refused "
                         "USER/PASS to users with an APOP secret, which Poplar does not"
                       : "plaintext_auth_networks: everywhere (USER/PASS without TLS)");
       } else if (v == "local" || v == "3") {
         p.add_plaintext_auth_networks("127.0.0.0/8");
         p.add_plaintext_auth_networks("::1/128");
         Mapped(n, "plaintext_auth_networks: loopback only");
       } else if (v == "tls" || v == "4") {
         Mapped(n, "Poplar's default: USER/PASS only over TLS (no plaintext_auth_networks)");
       } else {  // never, 1
         NoEquivalent(n, "Poplar always allows USER/PASS over TLS; with no "
                         "plaintext_auth_networks it refuses them without TLS");
       }
     }},
    {"config-file", Kind::kString,
     [](State&, const std::string& v, TranslationNote& n) {
       Mapped(n, absl::StrCat("read and translated in place (", v, ")"));
     }},
    {"debug", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no protocol trace (it would log passwords and mail); popd and the "
                       "indexer log one line per event to the journal");
     }},
    {"tracefile", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no protocol trace file; logs go to the journal");
     }},
    {"downcase-user", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "user names are taken as given; create accounts in the case clients use");
     }},
    {"drac-host", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no POP-before-SMTP (DRAC): use SMTP AUTH on the MTA");
     }},
    {"fast-update", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: an expunge compacts the mailbox in place under the MDA locks "
                 "with a redo journal; nothing is copied back");
     }},
    {"group-server-mode", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "Poplar has one mode; server mode per group only changed Qpopper's "
                       "X-UIDL length window: check both with `poplarctl migrate check "
                       "--from qpopper [--server-mode]`");
     }},
    {"group-no-server-mode", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "Poplar has one mode (see group-server-mode)");
     }},
    {"hash-spool", Kind::kInt,
     [](State& s, const std::string& v, TranslationNote& n) {
       Spool(s)->set_layout(v == "2" ? config::SPOOL_HASHED_2 : config::SPOOL_HASHED_QPOPPER);
       Mapped(n, v == "2" ? "spools.layout: SPOOL_HASHED_2 (first and second letter)"
                          : "spools.layout: SPOOL_HASHED_QPOPPER (Qpopper's letter hash)");
     }},
    {"home-dir-mail", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       config::Spool* sp = Spool(s);
       sp->set_directory("/home");
       sp->set_layout(config::SPOOL_HOME);
       sp->set_home_mailbox(v);
       Mapped(n, absl::StrCat("spools { layout: SPOOL_HOME home_mailbox: \"", v,
                              "\" } with directory /home (set it to the parent of the homes)"));
     }},
    {"keep-temp-drop", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: there is no temp drop");
     }},
    {"kerberos", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no Kerberos ticket login; PAM with pam_krb5 checks passwords against "
                       "the KDC");
     }},
    {"kerberos-service", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no Kerberos ticket login (see kerberos)");
     }},
    {"log-facility", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "logs go to stderr/the journal with journald priorities; route them "
                       "with journald or rsyslog");
     }},
    {"log-login", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "the login log line has a fixed format");
     }},
    {"mail-command", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "XTND XMIT is not implemented yet (issue 16, second half)");
     }},
    {"mail-lock-check", Kind::kInt,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: the indexer never holds the dotlock while serving; an expunge "
                 "holds it only while it compacts");
     }},
    {"no-atomic-open", Kind::kBool,
     [](State& s, const std::string&, TranslationNote& n) {
       s.t->indexer.add_lock_methods(config::LOCK_DOTLOCK);
       Mapped(n, "lock_methods: LOCK_DOTLOCK (Poplar's dotlock always uses the NFS-safe link "
                 "method); set spools.poll for NFS");
     }},
    {"old-style-uid", Kind::kBool,
     [](State& s, const std::string& v, TranslationNote& n) {
       Uidl(s)->mutable_qpopper()->set_old_style_uid(Truthy(v));
       Mapped(n, absl::StrCat("uidl.qpopper.old_style_uid: ", Truthy(v) ? "true" : "false"));
     }},
    {"reverse-lookup", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: popd never looks up client names");
     }},
    {"server-mode", Kind::kBool,
     [](State& s, const std::string& v, TranslationNote& n) {
       Uidl(s)->mutable_qpopper()->set_server_mode(Truthy(v));
       Mapped(n, absl::StrCat("uidl.qpopper.server_mode: ", Truthy(v) ? "true" : "false",
                              " (Qpopper's X-UIDL window; Poplar never copies the spool)"));
     }},
    {"shy", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "built in: popd names its implementation (CAPA IMPLEMENTATION) only after "
                 "login");
     }},
    {"spool-dir", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       Spool(s)->set_directory(v);
       Mapped(n, absl::StrCat("spools.directory: \"", v, "\""));
     }},
    {"temp-dir", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: no temp drop");
     }},
    {"temp-name", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       Mapped(n, "not needed: no temp drop");
     }},
    {"spool-options", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no per-spool option files: users cannot change server policy");
     }},
    {"user-options", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no per-user option files: users cannot change server policy");
     }},
    {"statistics", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no per-session statistics log line option; metrics are being added "
                       "(issue 17)");
     }},
    {"timeout", Kind::kInt,
     [](State& s, const std::string& v, TranslationNote& n) {
       int t = 0;
       if (!absl::SimpleAtoi(v, &t)) t = 600;
       s.timeout_s = t;
       Mapped(n, t < 600 ? absl::StrCat("limits.autologout_s: 600 (", t,
                                        " s is below RFC 1939's ten minutes)")
                         : absl::StrCat("limits.autologout_s: ", t));
     }},
    {"timing", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no timing log lines; benchmarks and metrics measure latency");
     }},
    {"tls-support", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       s.tls_mode = (v == "alternate-port" || v == "1") ? 1 : (v == "stls" || v == "2") ? 2 : 0;
       Mapped(n, s.tls_mode == 1   ? "listen.implicit_tls_address (port 995) with tls { }"
                 : s.tls_mode == 2 ? "tls { } on listen.address (STLS)"
                                   : "no tls { }");
     }},
    {"tls-version", Kind::kString,
     [](State& s, const std::string&, TranslationNote& n) {
       s.t->popd.mutable_tls()->set_min_version("TLSv1.2");
       NoEquivalent(n, "SSLv2, SSLv3, TLS 1.0 and 1.1 are refused: tls.min_version \"TLSv1.2\"");
     }},
    {"tls-cipher-list", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "kept Poplar's modern tls.ciphers: an old list would re-enable weak "
                       "ciphers");
     }},
    {"tls-identity-file", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       s.tls_identity = v;
       Mapped(n, "tls.certificate_chain_file and tls.private_key_file (the same PEM file)");
     }},
    {"tls-server-cert-file", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       s.tls_cert = v;
       Mapped(n, "tls.certificate_chain_file");
     }},
    {"tls-private-key-file", Kind::kString,
     [](State& s, const std::string& v, TranslationNote& n) {
       s.tls_key = v;
       Mapped(n, "tls.private_key_file");
     }},
    {"tls-passphrase", Kind::kString,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "the key must be unencrypted and readable only by popd (run_as); "
                       "decrypt it with openssl pkey");
     }},
    {"tls-options", Kind::kInt,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "OpenSSL option bits are fixed by popd (no compression, no renegotiation, "
                       "TLS 1.2+)");
     }},
    {"tls-workarounds", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "no OpenSSL bug workarounds for 1990s clients");
     }},
    {"trim-domain", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "user names are taken as given (user@domain is a name of its own)");
     }},
    {"update-on-abort", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "a dropped connection never deletes anything (RFC 1939 §6)");
     }},
    {"update-status-headers", Kind::kBool,
     [](State& s, const std::string& v, TranslationNote& n) {
       Uidl(s)->mutable_qpopper()->set_update_status_headers(Truthy(v));
       Mapped(n, "uidl.qpopper.update_status_headers (X-UIDL headers are adopted); Poplar "
                 "never writes Status: or X-UIDL: into the spool");
     }},
    {"uw-kluge", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "the UW \"FOLDER INTERNAL DATA\" message is not hidden yet");
     }},
    {"uw-kludge", Kind::kBool,
     [](State&, const std::string&, TranslationNote& n) {
       NoEquivalent(n, "the UW \"FOLDER INTERNAL DATA\" message is not hidden yet");
     }},
};

const Option* FindOption(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (const Option& o : kOptions) {
    if (o.name == lower) return &o;
  }
  return nullptr;
}

std::string Unquote(std::string v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

absl::Status Apply(State& s, const std::string& name, std::string value, bool is_set,
                   const std::string& origin) {
  const Option* o = FindOption(name);
  if (o == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": unknown Qpopper option \"", std::string(name), "\""));
  }
  if (o->kind == Kind::kBool) {
    if (!is_set) value = "false";
    if (value.empty()) value = "true";
    if (!Truthy(value) && value != "false" && value != "0" && value != "no" && value != "off") {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": ", std::string(name), " wants true or false"));
    }
    value = Truthy(value) ? "true" : "false";
  } else if (!is_set) {
    value = "";
  } else if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": ", std::string(name), " needs a value"));
  } else if (o->kind == Kind::kInt) {
    int n = 0;
    if (!absl::SimpleAtoi(value, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": ", std::string(name), " wants a number"));
    }
  }
  TranslationNote note{std::string(o->name), value, false, ""};
  o->handler(s, value, note);
  // A later setting of the same option replaces the earlier note (Qpopper: the last one wins).
  auto& notes = s.t->notes;
  for (auto it = notes.begin(); it != notes.end(); ++it) {
    if (it->option == note.option) {
      notes.erase(it);
      break;
    }
  }
  notes.push_back(std::move(note));
  return absl::OkStatus();
}

absl::Status ApplyConfig(State& s, std::string_view text, const IncludeReader& include,
                         const std::string& origin, int depth) {
  if (depth > 100) return absl::InvalidArgumentError("config-file nested more than 100 deep");
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    std::string line(raw);
    if (size_t hash = line.find('#'); hash != std::string::npos && line.find('"') > hash) {
      line.resize(hash);
    }
    std::string stripped(absl::StripAsciiWhitespace(line));
    if (stripped.empty()) continue;
    const std::string where = absl::StrCat(origin, ":", line_no);
    std::string verb = stripped.substr(0, stripped.find_first_of(" \t"));
    std::string rest(absl::StripAsciiWhitespace(
        stripped.size() > verb.size() ? absl::string_view(stripped).substr(verb.size()) : ""));
    verb = absl::AsciiStrToLower(verb);
    if (verb != "set" && verb != "reset") {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected set or reset"));
    }
    std::string name = rest, value;
    if (size_t eq = rest.find('='); eq != std::string::npos) {
      name = std::string(absl::StripAsciiWhitespace(absl::string_view(rest).substr(0, eq)));
      value =
          Unquote(std::string(absl::StripAsciiWhitespace(absl::string_view(rest).substr(eq + 1))));
    }
    if (absl::Status st = Apply(s, name, value, verb == "set", where); !st.ok()) return st;
    if (absl::AsciiStrToLower(name) == "config-file" && verb == "set") {
      std::optional<std::string> inner = include(value);
      if (!inner) return absl::InvalidArgumentError(absl::StrCat(where, ": cannot read ", value));
      if (absl::Status st = ApplyConfig(s, *inner, include, value, depth + 1); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

// Qpopper's command-line flags (the 4.1 man page), as option names.
absl::Status ApplyFlags(State& s, const std::vector<std::string>& flags,
                        const IncludeReader& include) {
  static const std::map<std::string, std::pair<std::string, bool>> kFlags = {
      // flag -> (option, takes a value)
      {"-b", {"bulldir", true}},
      {"-B", {"bulldb-nonfatal", false}},
      {"-c", {"downcase-user", false}},
      {"-C", {"trim-domain", false}},
      {"-d", {"debug", false}},
      {"-D", {"drac-host", true}},
      {"-f", {"config-file", true}},
      {"-F", {"fast-update", false}},
      {"-k", {"kerberos", false}},
      {"-K", {"kerberos-service", true}},
      {"-l", {"tls-support", true}},
      {"-L", {"mail-lock-check", true}},
      {"-p", {"clear-text-password", true}},
      {"-R", {"reverse-lookup", false}},
      {"-s", {"statistics", false}},
      {"-S", {"server-mode", false}},
      {"-t", {"tracefile", true}},
      {"-T", {"timeout", true}},
      {"-u", {"user-options", false}},
      {"-U", {"spool-options", false}},
      {"-y", {"log-facility", true}},
  };
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& f = flags[i];
    if (f == "-e") {
      if (i + 1 >= flags.size()) return absl::InvalidArgumentError("-e needs a value");
      for (absl::string_view kv : absl::StrSplit(flags[++i], ',')) {
        std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
        const std::string opt = p.first == "login_delay" ? "announce-login-delay"
                                : p.first == "expire"    ? "announce-expire"
                                                         : "";
        if (opt.empty()) return absl::InvalidArgumentError(absl::StrCat("-e: unknown ", kv));
        if (absl::Status st = Apply(s, opt, p.second, true, "-e"); !st.ok()) return st;
      }
      continue;
    }
    if (f == "-v" || f == "-V" || f == "-x") {
      s.t->notes.push_back({f, "", false, "version and trace flags of Qpopper itself"});
      continue;
    }
    auto it = kFlags.find(f.substr(0, 2));
    if (f.size() >= 2 && f[0] == '-' && it != kFlags.end()) {
      std::string value;
      if (it->second.second) {
        if (f.size() > 2) {
          value = f.substr(2);
        } else if (i + 1 < flags.size()) {
          value = flags[++i];
        } else {
          return absl::InvalidArgumentError(absl::StrCat(f, " needs a value"));
        }
      } else if (f.size() > 2) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag ", f));
      }
      // -R turns reverse lookups off; every other boolean flag turns its option on.
      if (f == "-R") value = "false";
      if (absl::Status st = Apply(s, it->second.first, value, true, f); !st.ok()) return st;
      if (it->second.first == "config-file") {
        std::optional<std::string> inner = include(value);
        if (!inner) return absl::InvalidArgumentError(absl::StrCat("-f: cannot read ", value));
        if (absl::Status st = ApplyConfig(s, *inner, include, value, 1); !st.ok()) return st;
      }
      continue;
    }
    if (!f.empty() && f[0] != '-') {  // [addr][:port], standalone mode
      std::string addr = f, port = "110";
      if (size_t colon = f.rfind(':'); colon != std::string::npos && f.back() != ']') {
        addr = f.substr(0, colon);
        port = f.substr(colon + 1);
      }
      if (addr.empty()) addr = "0.0.0.0";
      s.listen = absl::StrCat(addr, ":", port);
      s.t->notes.push_back({"[addr][:port]", f, true, absl::StrCat("listen.address: ", s.listen)});
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", f));
  }
  return absl::OkStatus();
}

void Finish(State& s) {
  config::PopdConfig& p = s.t->popd;
  p.mutable_listen()->set_address(s.listen);
  p.mutable_limits()->set_autologout_s(static_cast<uint32_t>(std::max(600, s.timeout_s)));
  if (s.tls_mode != 0) {
    config::PopdTls* tls = p.mutable_tls();
    tls->set_certificate_chain_file(!s.tls_cert.empty() ? s.tls_cert : s.tls_identity);
    tls->set_private_key_file(!s.tls_key.empty() ? s.tls_key : s.tls_identity);
    if (s.tls_mode == 1) {
      std::string host = s.listen.substr(0, s.listen.rfind(':'));
      p.mutable_listen()->set_implicit_tls_address(absl::StrCat(host, ":995"));
    }
  } else if (p.has_tls()) {
    p.clear_tls();  // tls-version without tls-support: Qpopper served no TLS either
  }
  Spool(s);
  if (!s.t->indexer.has_uidl()) Uidl(s);
}

}  // namespace

absl::StatusOr<Translation> TranslateQpopperConfig(std::string_view config_text,
                                                   const std::vector<std::string>& flags,
                                                   const IncludeReader& include) {
  Translation t;
  State s(&t);
  // Qpopper reads the file first, then applies its command line (qpopper.md §5).
  if (absl::Status st = ApplyConfig(s, config_text, include, "qpopper.config", 0); !st.ok()) {
    return st;
  }
  if (absl::Status st = ApplyFlags(s, flags, include); !st.ok()) return st;
  Finish(s);
  return t;
}

std::string RenderTranslation(const Translation& t) {
  std::string indexer, popd;
  google::protobuf::TextFormat::PrintToString(t.indexer, &indexer);
  google::protobuf::TextFormat::PrintToString(t.popd, &popd);
  std::string out = absl::StrCat(
      "# ==== poplar-indexer configuration (poplar-indexer --config FILE --check-config) ====\n",
      "# The Qpopper UIDL scheme keeps every UIDL clients hold; check a spool first with\n",
      "# `poplarctl migrate check --from qpopper`.\n", indexer,
      "\n# ==== poplar-popd configuration ====\n", popd,
      "\n# ==== Qpopper options and what they became ====\n");
  for (const TranslationNote& n : t.notes) {
    absl::StrAppend(&out, "# ", n.option, n.value.empty() ? "" : absl::StrCat(" = ", n.value),
                    n.mapped ? ": " : ": NO EQUIVALENT: ", n.text, "\n");
  }
  return out;
}

int RunMigrateConfig(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << "usage: poplarctl migrate config QPOPPER_CONFIG [QPOPPER_FLAGS...]\n";
    return kExitUsage;
  }
  auto read = [](const std::string& path) -> std::optional<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  std::optional<std::string> text = read(args[0]);
  // A relative config-file is taken relative to the first file's directory.
  const size_t slash = args[0].rfind('/');
  const std::string base = slash == std::string::npos ? "" : args[0].substr(0, slash + 1);
  auto include = [&](const std::string& path) {
    return read(path.empty() || path[0] == '/' ? path : base + path);
  };
  if (!text) {
    err << "poplarctl migrate config: cannot read " << args[0] << "\n";
    return kExitUsage;
  }
  absl::StatusOr<Translation> t = TranslateQpopperConfig(
      *text, std::vector<std::string>(args.begin() + 1, args.end()), include);
  if (!t.ok()) {
    err << "poplarctl migrate config: " << t.status().message() << "\n";
    return kExitUsage;
  }
  out << RenderTranslation(*t);
  return kExitOk;
}

}  // namespace poplar::poplarctl
