#include "tools/popload/popload_core.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/sasl/base64.h"

namespace poplar::popload {
namespace {

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseSeconds(std::string_view s, double* out) {
  // from_chars for double is in GCC 11+; Debian 12 has GCC 12.
  return ParseNumber(s, out) && std::isfinite(*out) && *out >= 0;
}

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSession:
      return "session";
    case Mode::kDownload:
      return "download";
    case Mode::kLogin:
      return "login";
    case Mode::kIdle:
      return "idle";
    case Mode::kStream:
      return "stream";
  }
  return "?";
}

const char* TlsName(TlsMode tls) {
  switch (tls) {
    case TlsMode::kOff:
      return "off";
    case TlsMode::kImplicit:
      return "implicit";
    case TlsMode::kStls:
      return "stls";
  }
  return "?";
}

std::string Usage() {
  return "usage: popload session|download|login|idle|stream [options]\n"
         "  --host H (127.0.0.1; a name, IPv4 or IPv6)  --port P  --user PATTERN (u%04d; %d = "
         "connection % --users)\n"
         "  --users N (1)  --password W (benchpw)  --conns C (1)  --tls off|implicit|stls\n"
         "  --auth user|plain  --server-pid PID[,PID...] (CPU and memory of these process trees)\n"
         "  --timeout S (600)  --label TEXT\n"
         "  session:  --duration S (10) --warmup S (0): loop connect, login, STAT, UIDL, LIST, "
         "QUIT\n"
         "  download: --mbox FILE (verify every message) | --no-verify, --window N (1 RETR in "
         "flight)\n"
         "  login:    --expect N (STAT count)\n"
         "  idle:     --duration S (2) idle time, --concurrency N (64) logins in flight,\n"
         "            --no-login: hold connections after the greeting (checked with CAPA)\n"
         "  stream:   --mbox FILE --bytes N (2e9) [--tls implicit --cert PEM --key PEM]: the raw\n"
         "            loopback limit, a forked peer writes the file's bytes, popload reads them\n";
}

// Long on purpose: one branch per flag of the usage text above, in its order, each a line or two
// (a table would need a setter per flag all the same).
std::optional<Options> ParseOptions(const std::vector<std::string>& args, std::string* error) {
  Options o;
  if (args.empty()) {
    *error = "no mode";
    return std::nullopt;
  }
  const std::string& mode = args[0];
  if (mode == "session") {
    o.mode = Mode::kSession;
  } else if (mode == "download") {
    o.mode = Mode::kDownload;
  } else if (mode == "login") {
    o.mode = Mode::kLogin;
  } else if (mode == "idle") {
    o.mode = Mode::kIdle;
    o.duration_s = 2;
  } else if (mode == "stream") {
    o.mode = Mode::kStream;
  } else {
    *error = "unknown mode '" + mode + "'";
    return std::nullopt;
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--no-verify") {
      o.verify = false;
      continue;
    }
    if (flag == "--no-login") {
      o.no_login = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      *error = flag + " needs a value";
      return std::nullopt;
    }
    const std::string& v = args[++i];
    bool ok = true;
    if (flag == "--host") {
      o.host = v;
    } else if (flag == "--port") {
      ok = ParseNumber(v, &o.port) && o.port > 0 && o.port < 65536;
    } else if (flag == "--user") {
      o.user = v;
      ok = !v.empty();
    } else if (flag == "--users") {
      ok = ParseNumber(v, &o.users) && o.users > 0;
    } else if (flag == "--password") {
      o.password = v;
    } else if (flag == "--conns") {
      ok = ParseNumber(v, &o.conns) && o.conns > 0 && o.conns <= 1000000;
    } else if (flag == "--duration") {
      ok = ParseSeconds(v, &o.duration_s);
    } else if (flag == "--warmup") {
      ok = ParseSeconds(v, &o.warmup_s);
    } else if (flag == "--timeout") {
      ok = ParseSeconds(v, &o.timeout_s) && o.timeout_s > 0;
    } else if (flag == "--tls") {
      if (v == "off") {
        o.tls = TlsMode::kOff;
      } else if (v == "implicit") {
        o.tls = TlsMode::kImplicit;
      } else if (v == "stls") {
        o.tls = TlsMode::kStls;
      } else {
        ok = false;
      }
    } else if (flag == "--auth") {
      if (v == "user") {
        o.auth = AuthMode::kUserPass;
      } else if (v == "plain") {
        o.auth = AuthMode::kPlain;
      } else {
        ok = false;
      }
    } else if (flag == "--mbox") {
      o.mbox = v;
    } else if (flag == "--expect") {
      ok = ParseNumber(v, &o.expect) && o.expect >= 0;
    } else if (flag == "--server-pid") {
      std::string_view rest = v;
      while (ok && !rest.empty()) {
        size_t comma = rest.find(',');
        int pid = 0;
        ok = ParseNumber(rest.substr(0, comma), &pid) && pid > 0;
        o.server_pids.push_back(pid);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (flag == "--window") {
      ok = ParseNumber(v, &o.window) && o.window > 0 && o.window <= 1024;
    } else if (flag == "--concurrency") {
      ok = ParseNumber(v, &o.concurrency) && o.concurrency > 0;
    } else if (flag == "--cert") {
      o.cert = v;
    } else if (flag == "--key") {
      o.key = v;
    } else if (flag == "--bytes") {
      ok = ParseSeconds(v, &o.stream_bytes) && o.stream_bytes >= 1;
    } else if (flag == "--label") {
      o.label = v;
    } else {
      *error = "unknown option " + flag;
      return std::nullopt;
    }
    if (!ok) {
      *error = "bad value for " + flag + ": '" + v + "'";
      return std::nullopt;
    }
  }
  if (o.no_login && o.mode != Mode::kIdle) {
    *error = "--no-login is for idle";
    return std::nullopt;
  }
  if (o.mode == Mode::kDownload && o.verify && o.mbox.empty()) {
    *error = "download needs --mbox FILE (or --no-verify)";
    return std::nullopt;
  }
  if (o.mode == Mode::kStream) {
    if (o.mbox.empty()) {
      *error = "stream needs --mbox FILE";
      return std::nullopt;
    }
    if (o.tls == TlsMode::kStls) {
      *error = "stream takes --tls off or implicit";
      return std::nullopt;
    }
    if (o.tls == TlsMode::kImplicit && (o.cert.empty() || o.key.empty())) {
      *error = "stream --tls implicit needs --cert and --key";
      return std::nullopt;
    }
  }
  return o;
}

std::string UserFor(std::string_view pattern, int index, int users) {
  std::string out;
  bool substituted = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c != '%' || i + 1 >= pattern.size()) {
      out += c;
      continue;
    }
    if (pattern[i + 1] == '%') {
      out += '%';
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool zero = j < pattern.size() && pattern[j] == '0';
    if (zero) ++j;
    size_t width = 0;
    while (j < pattern.size() && pattern[j] >= '0' && pattern[j] <= '9' && width < 100) {
      width = width * 10 + static_cast<size_t>(pattern[j] - '0');
      ++j;
    }
    if (substituted || j >= pattern.size() || pattern[j] != 'd') {
      out += c;  // not a conversion we know: literal
      continue;
    }
    std::string number = std::to_string(index % std::max(1, users));
    if (number.size() < width) number.insert(0, width - number.size(), zero ? '0' : ' ');
    out += number;
    substituted = true;
    i = j;
  }
  return out;
}

std::string AuthPlainCommand(std::string_view user, std::string_view password) {
  std::string raw;
  raw += '\0';
  raw += user;
  raw += '\0';
  raw += password;
  return "AUTH PLAIN " + sasl::Base64Encode(raw);
}

std::optional<Status> ParseStatus(std::string_view line) {
  Status s;
  std::string_view rest;
  if (line.substr(0, 3) == "+OK") {
    s.ok = true;
    rest = line.substr(3);
  } else if (line.substr(0, 4) == "-ERR") {
    rest = line.substr(4);
  } else {
    return std::nullopt;
  }
  if (!rest.empty()) {
    if (rest[0] != ' ') return std::nullopt;  // "+OKAY" is not a status
    rest.remove_prefix(1);
  }
  s.text = rest;
  return s;
}

std::optional<StatReply> ParseStat(std::string_view text) {
  size_t sp = text.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::string_view count = text.substr(0, sp);
  std::string_view octets = text.substr(sp + 1);
  size_t end = octets.find(' ');  // anything after the size is allowed (RFC 1939 §5)
  if (end != std::string_view::npos) octets = octets.substr(0, end);
  StatReply r;
  if (!ParseNumber(count, &r.count) || !ParseNumber(octets, &r.octets)) return std::nullopt;
  return r;
}

size_t MultilineDecoder::Feed(std::string_view in, std::string* out) {
  const char* p = in.data();
  const size_t n = in.size();
  size_t i = 0;
  auto emit = [&](const char* b, size_t len) {
    decoded_ += len;
    if (out != nullptr) out->append(b, len);
  };
  while (i < n && state_ != State::kDone) {
    switch (state_) {
      case State::kLineStart:
        if (p[i] == '.') {
          state_ = State::kDot;
          ++i;
        } else {
          state_ = State::kInLine;
        }
        break;
      case State::kDot:
        if (p[i] == '\r') {
          state_ = State::kDotCr;
          ++i;
        } else {
          // The stuffed dot is dropped; a correct server only stuffs lines that start with '.'.
          if (p[i] != '.') malformed_ = true;
          state_ = State::kInLine;
        }
        break;
      case State::kDotCr:
        if (p[i] == '\n') {
          state_ = State::kDone;
          ++i;
        } else {
          malformed_ = true;  // ".\r" then more: an unstuffed line that started with '.'
          emit("\r", 1);
          state_ = State::kInLine;
        }
        break;
      case State::kInLine: {
        const void* cr = std::memchr(p + i, '\r', n - i);
        size_t end = cr != nullptr ? static_cast<size_t>(static_cast<const char*>(cr) - p) : n;
        emit(p + i, end - i);
        i = end;
        if (cr != nullptr) {
          state_ = State::kCr;
          ++i;
        }
        break;
      }
      case State::kCr:
        if (p[i] == '\n') {
          emit("\n", 1);
          ++lines_;
          state_ = State::kLineStart;
          ++i;
        } else {
          emit("\r", 1);  // a bare CR inside a line is content
          state_ = State::kInLine;
        }
        break;
      case State::kDone:
        break;
    }
  }
  return i;
}

std::optional<size_t> FirstDifference(std::string_view got, std::string_view want) {
  size_t n = std::min(got.size(), want.size());
  auto mismatch =
      std::mismatch(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(n), want.begin());
  size_t at = static_cast<size_t>(mismatch.first - got.begin());
  if (at < n) return at;
  if (got.size() != want.size()) return n;
  return std::nullopt;
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double rank = std::ceil(std::clamp(p, 0.0, 1.0) * static_cast<double>(values.size()));
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(index, values.size() - 1)];
}

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::vector<std::string_view> fields;  // fields 3.. of proc(5)
  size_t i = 0;
  while (i < rest.size() && fields.size() < 15) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\n')) ++i;
    size_t b = i;
    while (i < rest.size() && rest[i] != ' ' && rest[i] != '\n') ++i;
    if (i > b) fields.push_back(rest.substr(b, i - b));
  }
  if (fields.size() < 15) return std::nullopt;
  ProcStat s;
  uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
  if (!ParseNumber(fields[1], &s.ppid) || !ParseNumber(fields[11], &utime) ||
      !ParseNumber(fields[12], &stime) || !ParseNumber(fields[13], &cutime) ||
      !ParseNumber(fields[14], &cstime)) {
    return std::nullopt;
  }
  s.self_ticks = utime + stime;
  s.child_ticks = cutime + cstime;
  return s;
}

std::optional<uint64_t> ParseKbField(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view v = line.substr(key.size() + 1);
      while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.remove_prefix(1);
      size_t digits = 0;
      while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
      uint64_t kb = 0;
      if (ParseNumber(v.substr(0, digits), &kb)) return kb;
      return std::nullopt;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return std::nullopt;
}

}  // namespace poplar::popload
