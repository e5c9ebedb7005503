// SCRAM-SHA-256 arithmetic (RFC 5802 / RFC 7677), the verifier storage form and strict base64.
#include "common/sasl/scram.h"

#include <string>
#include <string_view>

#include "common/sasl/base64.h"
#include "common/util/hex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace poplar::sasl {
namespace {

// RFC 7677 §3: user "user", password "pencil".
constexpr std::string_view kSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr uint32_t kIterations = 4096;
constexpr std::string_view kClientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinalWithoutProof =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kProofB64 = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerSignatureB64 = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// Derived from the exchange above (the proof and signature pin them down; cross-checked with
// Python's hashlib.pbkdf2_hmac + hmac).
constexpr std::string_view kStoredKeyB64 = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
constexpr std::string_view kServerKeyB64 = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
constexpr std::string_view kClientKeyB64 = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
constexpr std::string_view kEncoded =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

std::string B64(std::string_view text) {
  std::optional<std::string> out = Base64Decode(text);
  EXPECT_TRUE(out.has_value()) << text;
  return out.value_or("");
}

std::string AuthMessage() {
  return std::string(kClientFirstBare) + "," + std::string(kServerFirst) + "," +
         std::string(kClientFinalWithoutProof);
}

ScramVerifier Rfc7677Verifier() { return MakeScramVerifier("pencil", B64(kSaltB64), kIterations); }

TEST(ScramTest, Rfc7677VerifierKeys) {
  ScramVerifier v = Rfc7677Verifier();
  EXPECT_EQ(v.iterations, kIterations);
  EXPECT_EQ(v.salt, B64(kSaltB64));
  EXPECT_EQ(Base64Encode(v.stored_key), kStoredKeyB64);
  EXPECT_EQ(Base64Encode(v.server_key), kServerKeyB64);
  EXPECT_TRUE(IsWellFormed(v));
}

TEST(ScramTest, Rfc7677ClientProofAndServerSignature) {
  ScramVerifier v = Rfc7677Verifier();
  std::string salted = SaltedPassword("pencil", v.salt, v.iterations);
  std::string client_key = HmacSha256(salted, "Client Key");
  EXPECT_EQ(Base64Encode(client_key), kClientKeyB64);
  EXPECT_EQ(Sha256Bytes(client_key), v.stored_key);
  EXPECT_EQ(HmacSha256(salted, "Server Key"), v.server_key);

  const std::string auth = AuthMessage();
  EXPECT_EQ(Base64Encode(ClientProof(client_key, v.stored_key, auth)), kProofB64);
  EXPECT_EQ(Base64Encode(ServerSignature(v.server_key, auth)), kServerSignatureB64);
  EXPECT_TRUE(VerifyClientProof(v, auth, B64(kProofB64)));
}

TEST(ScramTest, ClientProofRejectsTampering) {
  ScramVerifier v = Rfc7677Verifier();
  const std::string auth = AuthMessage();
  std::string proof = B64(kProofB64);
  for (size_t i : {size_t{0}, size_t{17}, size_t{31}}) {
    std::string bad = proof;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(VerifyClientProof(v, auth, bad)) << "byte " << i;
  }
  EXPECT_FALSE(VerifyClientProof(v, auth + "x", proof));  // different AuthMessage
  EXPECT_FALSE(VerifyClientProof(v, auth, proof.substr(0, 31)));
  EXPECT_FALSE(VerifyClientProof(v, auth, proof + "x"));
  EXPECT_FALSE(VerifyClientProof(v, auth, ""));
  ScramVerifier other = MakeScramVerifier("pencil2", v.salt, kIterations);
  EXPECT_FALSE(VerifyClientProof(other, auth, proof));
}

TEST(ScramTest, PlainPasswordChecks) {
  ScramVerifier v = Rfc7677Verifier();
  EXPECT_TRUE(VerifyPlainPassword(v, "pencil"));
  for (std::string_view wrong : {"", "Pencil", "pencil ", "pencil\n", "pencil2", "pen", "penci"}) {
    EXPECT_FALSE(VerifyPlainPassword(v, wrong)) << wrong;
  }
  // HMAC zero-pads its key, so PBKDF2 alone would accept these: the NUL check must refuse them.
  EXPECT_FALSE(VerifyPlainPassword(v, std::string_view("pencil\0", 7)));
  EXPECT_FALSE(VerifyPlainPassword(v, std::string_view("pencil\0\0", 8)));
  EXPECT_FALSE(VerifyPlainPassword(v, std::string_view("pencil\0x", 8)));
}

TEST(ScramTest, PlainPasswordRefusesMalformedVerifier) {
  ScramVerifier v = Rfc7677Verifier();
  ScramVerifier few = v;
  few.iterations = 1;
  EXPECT_FALSE(VerifyPlainPassword(few, "pencil"));
  ScramVerifier no_salt = v;
  no_salt.salt.clear();
  EXPECT_FALSE(VerifyPlainPassword(no_salt, "pencil"));
  ScramVerifier short_key = v;
  short_key.stored_key.pop_back();
  EXPECT_FALSE(VerifyPlainPassword(short_key, "pencil"));
  EXPECT_FALSE(VerifyPlainPassword(ScramVerifier{}, "pencil"));
}

TEST(ScramDeathTest, MakeVerifierPreconditions) {
  EXPECT_DEATH(MakeScramVerifier("pw", "salt", kMinScramIterations - 1), "");
  EXPECT_DEATH(MakeScramVerifier("pw", "salt", kMaxScramIterations + 1), "");
  EXPECT_DEATH(MakeScramVerifier("pw", "", kMinScramIterations), "");
  EXPECT_DEATH(MakeScramVerifier(std::string_view("p\0w", 3), "salt", kMinScramIterations), "");
  EXPECT_DEATH(EncodeScramVerifier(ScramVerifier{}), "");
}

TEST(ScramTest, SaltAndIterationsMatter) {
  ScramVerifier a = MakeScramVerifier("secret", "salt-one-16bytes", 4096);
  ScramVerifier b = MakeScramVerifier("secret", "salt-two-16bytes", 4096);
  ScramVerifier c = MakeScramVerifier("secret", "salt-one-16bytes", 4097);
  EXPECT_NE(a.stored_key, b.stored_key);
  EXPECT_NE(a.stored_key, c.stored_key);
  EXPECT_NE(a.server_key, a.stored_key);
  EXPECT_TRUE(VerifyPlainPassword(a, "secret"));
  EXPECT_TRUE(VerifyPlainPassword(b, "secret"));
  EXPECT_TRUE(VerifyPlainPassword(c, "secret"));
}

TEST(ScramTest, HmacAndShaKnownAnswers) {
  // RFC 4231 test case 2 and FIPS 180-2 "abc".
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(Sha256Bytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Bytes("").size(), kSha256Bytes);
}

TEST(ScramTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
}

TEST(ScramEncodingTest, Rfc7677EncodesLikePostgres) {
  EXPECT_EQ(EncodeScramVerifier(Rfc7677Verifier()), kEncoded);
  std::optional<ScramVerifier> parsed = ParseScramVerifier(kEncoded);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, Rfc7677Verifier());
  EXPECT_TRUE(VerifyPlainPassword(*parsed, "pencil"));
}

TEST(ScramEncodingTest, RoundTrip) {
  for (uint32_t iterations : {kMinScramIterations, 10000u, kMaxScramIterations}) {
    ScramVerifier v{std::string("\x00\x01\xff salt", 8), iterations, std::string(32, '\x7f'),
                    std::string(32, '\0')};
    std::string text = EncodeScramVerifier(v);
    std::optional<ScramVerifier> back = ParseScramVerifier(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, v);
  }
}

TEST(ScramEncodingTest, RejectsMalformed) {
  const std::string ok(kEncoded);
  const std::string stored(kStoredKeyB64);
  const std::string server(kServerKeyB64);
  const std::string salt(kSaltB64);
  const std::string_view cases[] = {
      "",
      "SCRAM-SHA-256$",
      "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "scram-sha-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
      "md5a3556571e93b0d20722ba62be61e8c2d",
      "pencil",
  };
  for (std::string_view c : cases) EXPECT_FALSE(ParseScramVerifier(c).has_value()) << c;

  auto make = [&](const std::string& iter, const std::string& s, const std::string& st,
                  const std::string& sv) {
    return "SCRAM-SHA-256$" + iter + ":" + s + "$" + st + ":" + sv;
  };
  ASSERT_TRUE(ParseScramVerifier(make("4096", salt, stored, server)).has_value());
  const std::string bad[] = {
      make("", salt, stored, server),
      make("0", salt, stored, server),
      make("04096", salt, stored, server),
      make("+4096", salt, stored, server),
      make("-4096", salt, stored, server),
      make("4096 ", salt, stored, server),
      make("4095", salt, stored, server),        // below RFC 7677's minimum
      make("10000001", salt, stored, server),    // above kMaxScramIterations
      make("4294967296", salt, stored, server),  // > UINT32_MAX
      make("99999999999", salt, stored, server),
      make("4096", "", stored, server),                          // empty salt
      make("4096", std::string(88, 'A'), stored, server),        // 66-byte salt: too long
      make("4096", "W22ZaJ0SNY7soEsUEjb6gQ=", stored, server),   // bad padding
      make("4096", "W22ZaJ0SNY7soEsUEjb6gQ", stored, server),    // missing padding
      make("4096", "W22ZaJ0SNY7soEsUEjb6gR==", stored, server),  // non-canonical tail bits
      make("4096", " W22ZaJ0SNY7soEsUEjb6gQ==", stored, server),
      make("4096", salt, stored.substr(0, 40) + "====", server),
      make("4096", salt, "AAAA", server),           // 3-byte StoredKey
      make("4096", salt, stored, server + "AAAA"),  // 35-byte ServerKey
      make("4096", salt, stored, ""),
      make("4096", salt, stored, server) + "$",
      make("4096", salt, stored, server) + ":",
      make("4096", salt, stored, server) + "\n",
      make("4096", salt + "$x", stored, server),
      "SCRAM-SHA-256$4096:" + salt + "$" + stored + server,       // no ':' between keys
      "SCRAM-SHA-256$4096" + salt + "$" + stored + ":" + server,  // no ':' after iterations
      "SCRAM-SHA-256$4096:" + salt + stored + ":" + server,       // no '$' before keys
      std::string(ok).replace(20, 1, std::string(1, '\0')),
  };
  for (const std::string& c : bad) EXPECT_FALSE(ParseScramVerifier(c).has_value()) << c;
}

TEST(Base64ScramTest, EncodeDecode) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode(""), std::string());
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zm9v"), "foo");
  EXPECT_EQ(Base64Decode("Zm9vYmFy"), "foobar");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    std::string bytes = all.substr(0, n);
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes) << n;
  }
  EXPECT_EQ(Base64Decode("AAAA"), std::string(3, '\0'));  // real zero bytes are kept
  EXPECT_EQ(Base64Decode("AA=="), std::string(1, '\0'));
}

TEST(Base64ScramTest, DecodeIsStrict) {
  for (std::string_view bad : {"Z", "Zg", "Zg=", "Zg===", "====", "A===", "Z===", "Zg=a",
                               "Zg==Zg==", " Zg==", "Zg== ", "Zg\n==", "Zm9v\n",
                               "Zh==", "Zm9=", "Zm-v", "Zm_v", "Zm9v YmFy", "=Zm9"}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(Base64Decode(std::string_view("Zm9\0", 4)).has_value());
}

}  // namespace
}  // namespace poplar::sasl
