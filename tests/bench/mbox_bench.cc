// Micro-benchmarks of the pure mbox core on a ~100 MB synthetic spool, built once in memory
// from a fixed seed: messages of lognormal size (median about 7 KB, most between 4 and 13 KB)
// with realistic header blocks, LF line endings, the odd '.' and "From " body line, and a few
// large base64 attachments.
//
//   BM_ScanMbox          one final ScanMbox over the whole buffer
//   BM_ScanMboxChunked   the indexer's pattern: the file arrives in 1 MiB reads, each scan
//                        resumes from the previous resume_offset, the last one is final
//   BM_WireTransform     every message through WireTransform (RETR) in 64 KiB chunks into one
//                        reused output string
//
// Throughput (bytes_per_second) counts input bytes: the mbox, or the messages' own bytes.
// Build with -DCMAKE_BUILD_TYPE=Release; run `poplar_bench` (or --benchmark_filter=...).
// POPLAR_BENCH_MB=n changes the spool size.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/mbox/scanner.h"
#include "common/pop3/wire_transform.h"

namespace poplar {
namespace {

// xoshiro256** seeded by splitmix64: fast, and the same spool on every machine.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  double Normal() {  // Box-Muller
    const double u1 = std::max(Uniform(), 1e-300);
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

const std::vector<std::string_view> kWords = {
    "the",      "of",        "and",     "to",       "in",       "is",       "that",    "for",
    "it",       "as",        "was",     "with",     "be",       "by",       "on",      "not",
    "he",       "this",      "are",     "or",       "his",      "from",     "at",      "which",
    "but",      "have",      "an",      "had",      "they",     "you",      "were",    "their",
    "one",      "all",       "we",      "meeting",  "report",   "attached", "please",  "review",
    "budget",   "schedule",  "server",  "mailbox",  "delivery", "thanks",   "regards", "question",
    "tomorrow", "quarterly", "project", "deadline", "customer", "invoice",  "update",  "release"};
const std::vector<std::string_view> kWeekdays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
const std::vector<std::string_view> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
const std::vector<std::string_view> kUsers = {"alice",   "bob",     "carol",   "dave",      "erin",
                                              "frank",   "grace",   "heidi",   "ivan",      "judy",
                                              "mallory", "noreply", "billing", "postmaster"};
const std::vector<std::string_view> kDomains = {"example.org", "example.com", "mail.example.net",
                                                "lists.example.edu", "corp.example"};
const std::vector<std::string_view> kMailers = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
    "Apple Mail (2.3731.700.6)", "Microsoft Outlook 16.0", "Mutt/2.2.9 (2022-11-12)",
    "Roundcube Webmail/1.6.5"};

void AppendNumber(std::string* out, uint64_t v, int width = 0) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(v));
  out->append(buf, static_cast<size_t>(n));
}

std::string Address(Rng& rng) {
  std::string a(rng.Pick(kUsers));
  a += '@';
  a += rng.Pick(kDomains);
  return a;
}

void AppendAsctime(Rng& rng, std::string* out) {
  out->append(rng.Pick(kWeekdays));
  out->push_back(' ');
  out->append(rng.Pick(kMonths));
  const uint64_t day = 1 + rng.Below(28);
  out->append(day < 10 ? "  " : " ");  // Postfix pads one-digit days
  AppendNumber(out, day);
  out->push_back(' ');
  AppendNumber(out, rng.Below(24), 2);
  out->push_back(':');
  AppendNumber(out, rng.Below(60), 2);
  out->push_back(':');
  AppendNumber(out, rng.Below(60), 2);
  out->push_back(' ');
  AppendNumber(out, 2015 + rng.Below(10));
}

void AppendHeaders(Rng& rng, uint64_t id, const std::string& from, bool multipart,
                   std::string* out) {
  out->append("Return-Path: <").append(from).append(">\n");
  out->append("X-Original-To: ").append(Address(rng)).append("\n");
  const uint64_t hops = 2 + rng.Below(4);
  for (uint64_t i = 0; i < hops; ++i) {
    out->append("Received: from mx");
    AppendNumber(out, rng.Below(20));
    out->append(".").append(rng.Pick(kDomains)).append(" (mx");
    AppendNumber(out, rng.Below(20));
    out->append(".").append(rng.Pick(kDomains)).append(" [192.0.2.");
    AppendNumber(out, rng.Below(255));
    out->append("])\n\tby mail.example.org (Postfix) with ESMTPS id 4Q");
    AppendNumber(out, rng.Next() % 100000000, 8);
    out->append("\n\tfor <").append(Address(rng)).append(">; ");
    AppendAsctime(rng, out);
    out->append(" +0000 (UTC)\n");
  }
  out->append(
      "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\n"
      "\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
      "\tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\n");
  out->append("Date: ");
  AppendAsctime(rng, out);
  out->append("\nFrom: ").append(from).append("\nTo: ").append(Address(rng));
  out->append("\nSubject: ");
  const uint64_t subject_words = 3 + rng.Below(6);
  for (uint64_t i = 0; i < subject_words; ++i) {
    if (i > 0) out->push_back(' ');
    out->append(rng.Pick(kWords));
  }
  out->append("\nMessage-ID: <");
  AppendNumber(out, id);
  out->append(".").append(std::to_string(rng.Next())).append("@").append(rng.Pick(kDomains));
  out->append(">\nMIME-Version: 1.0\nX-Mailer: ").append(rng.Pick(kMailers)).append("\n");
  if (multipart) {
    out->append("Content-Type: multipart/mixed; boundary=\"=_b");
    AppendNumber(out, id);
    out->append("\"\n");
  } else {
    out->append("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
  }
  if (rng.OneIn(3)) out->append("Status: RO\n");
  if (rng.OneIn(10)) out->append("X-UIDL: ").append(std::to_string(rng.Next())).append("\n");
  out->push_back('\n');
}

// Text lines of words, wrapped at about 72 columns, until `size` bytes.
void AppendText(Rng& rng, size_t size, std::string* out) {
  const size_t stop = out->size() + size;
  size_t line_start = out->size();
  while (out->size() < stop) {
    if (out->size() == line_start) {
      const uint64_t r = rng.Below(400);
      if (r == 0) {
        out->append(".\n");  // a lone dot: stuffed on the wire
        line_start = out->size();
        continue;
      }
      if (r == 1) out->append("...");
      if (r == 2) out->append("From");  // "From the ...": not a separator (no date)
      if (r == 3) out->append(">From");
      if (r >= 4 && r < 12) {  // paragraph break: an empty line
        out->push_back('\n');
        line_start = out->size();
        continue;
      }
    } else {
      out->push_back(' ');
    }
    out->append(rng.Pick(kWords));
    if (out->size() - line_start > 64 + rng.Below(12)) {
      out->push_back('\n');
      line_start = out->size();
    }
  }
  if (out->back() != '\n') out->push_back('\n');
}

void AppendBase64(Rng& rng, size_t size, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const size_t lines = size / 77 + 1;
  for (size_t i = 0; i < lines; ++i) {
    uint64_t bits = 0;
    for (int j = 0; j < 76; ++j) {
      if (j % 10 == 0) bits = rng.Next();
      out->push_back(kAlphabet[bits & 63]);
      bits >>= 6;
    }
    out->push_back('\n');
  }
}

struct Spool {
  std::string bytes;
  std::vector<std::string_view> messages;  // each message's own bytes (after its From_ line)
  uint64_t message_bytes = 0;
};

std::string BuildSpool(size_t target) {
  Rng rng(0x506f706c6172ULL);  // "Poplar"
  std::string out;
  out.reserve(target + (4 << 20));
  uint64_t id = 0;
  while (out.size() < target) {
    ++id;
    const std::string from = Address(rng);
    out.append("From ").append(from).append(" ");
    AppendAsctime(rng, &out);
    out.push_back('\n');
    const bool attachment = rng.OneIn(1000);
    // Body size: lognormal, median ~6 KB; with the ~1.5 KB header block most messages are
    // 4-13 KB.
    const double body = std::exp(8.7 + 0.55 * rng.Normal());
    const size_t text = static_cast<size_t>(std::clamp(body, 200.0, 200000.0));
    AppendHeaders(rng, id, from, attachment, &out);
    if (attachment) {
      out.append("--=_b")
          .append(std::to_string(id))
          .append("\nContent-Type: text/plain; charset=utf-8\n\n");
      AppendText(rng, text, &out);
      out.append("\n--=_b")
          .append(std::to_string(id))
          .append(
              "\nContent-Type: application/pdf; name=\"report.pdf\"\n"
              "Content-Transfer-Encoding: base64\n"
              "Content-Disposition: attachment; filename=\"report.pdf\"\n\n");
      AppendBase64(rng, (256 << 10) + rng.Below(2 << 20), &out);
      out.append("\n--=_b").append(std::to_string(id)).append("--\n");
    } else {
      AppendText(rng, text, &out);
    }
    out.push_back('\n');  // the empty line before the next From_
  }
  return out;
}

const Spool& GetSpool() {
  static const Spool* spool = [] {
    size_t mb = 100;
    if (const char* env = std::getenv("POPLAR_BENCH_MB")) mb = std::max(1, std::atoi(env));
    auto* s = new Spool;
    s->bytes = BuildSpool(mb << 20);
    mbox::ScanResult r = mbox::ScanMbox(s->bytes, 0, {.final = true});
    for (const mbox::MessageInfo& m : r.messages) {
      s->messages.push_back(std::string_view(s->bytes).substr(m.data_offset, m.length()));
      s->message_bytes += m.length();
    }
    std::vector<size_t> sizes;
    for (std::string_view m : s->messages) sizes.push_back(m.size());
    std::sort(sizes.begin(), sizes.end());
    auto pct = [&](size_t p) { return sizes.empty() ? 0 : sizes[sizes.size() * p / 100]; };
    std::fprintf(stderr,
                 "spool: %zu bytes, %zu messages (%llu bytes), message size p10 %zu, "
                 "median %zu, p90 %zu, max %zu\n",
                 s->bytes.size(), s->messages.size(),
                 static_cast<unsigned long long>(s->message_bytes), pct(10), pct(50), pct(90),
                 sizes.empty() ? 0 : sizes.back());
    return s;
  }();
  return *spool;
}

void BM_ScanMbox(benchmark::State& state) {
  const Spool& spool = GetSpool();
  size_t messages = 0;
  for (auto _ : state) {
    mbox::ScanResult r = mbox::ScanMbox(spool.bytes, 0, {.final = true});
    messages = r.messages.size();
    benchmark::DoNotOptimize(r);
  }
  if (messages != spool.messages.size()) state.SkipWithError("message count changed");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * spool.bytes.size()));
  state.counters["messages"] = static_cast<double>(messages);
}
BENCHMARK(BM_ScanMbox)->Unit(benchmark::kMillisecond);

void BM_ScanMboxChunked(benchmark::State& state) {
  const Spool& spool = GetSpool();
  const std::string_view bytes = spool.bytes;
  constexpr size_t kWindow = 1 << 20;
  size_t messages = 0;
  uint64_t scanned = 0;
  for (auto _ : state) {
    messages = 0;
    uint64_t resume = 0;
    size_t read_end = 0;
    while (true) {
      read_end = std::min(bytes.size(), read_end + kWindow);  // the next 1 MiB read
      const bool final = read_end == bytes.size();
      mbox::ScanResult r =
          mbox::ScanMbox(bytes.substr(resume, read_end - resume), resume, {.final = final});
      scanned += read_end - resume;
      messages += r.messages.size();
      resume = r.resume_offset;
      benchmark::DoNotOptimize(r);
      if (final) break;
    }
  }
  if (messages != spool.messages.size()) state.SkipWithError("message count changed");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["rescan_ratio"] =
      static_cast<double>(scanned) / static_cast<double>(state.iterations() * bytes.size());
}
BENCHMARK(BM_ScanMboxChunked)->Unit(benchmark::kMillisecond);

void BM_WireTransform(benchmark::State& state) {
  const Spool& spool = GetSpool();
  constexpr size_t kChunk = 64 << 10;
  std::string out;
  uint64_t octets = 0;
  for (auto _ : state) {
    octets = 0;
    for (std::string_view m : spool.messages) {
      pop3::WireTransform t;
      out.clear();
      for (size_t pos = 0; pos < m.size(); pos += kChunk) t.Feed(m.substr(pos, kChunk), &out);
      t.Finish(/*terminator=*/true, &out);
      octets += t.octets();
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * spool.message_bytes));
  state.counters["octets"] = static_cast<double>(octets);
}
BENCHMARK(BM_WireTransform)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace poplar

BENCHMARK_MAIN();
