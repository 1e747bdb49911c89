// token_bench: signs and verifies per second, EdDSA and HS256, through the
// whole path (sign_token, TokenVerifier::verify) and the raw key operations.
//
//   token_bench [--seconds S] [--max N]
//
// Each row runs until S seconds (default 1) or N operations (default
// 1000000) have passed, whichever comes first, on one thread. Rates are given
// by wall-clock time and by the thread's CPU time.
#include <hutopia/token.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  long long ops = 0;
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // this thread's CPU time: less disturbed by other load on the machine
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Runs `op` until the time or count bound; a failed op stops the program.
Row measure(double max_seconds, long long max_ops, const std::function<bool()>& op) {
  Row row;
  double cpu_start = thread_cpu_seconds();
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(max_seconds);
  while (row.ops < max_ops) {
    // Check the clock every 64 operations: reading it costs as much as an HMAC.
    for (int i = 0; i < 64 && row.ops < max_ops; ++i, ++row.ops) {
      if (!op()) {
        std::fprintf(stderr, "token_bench: an operation failed\n");
        std::exit(1);
      }
    }
    if (Clock::now() >= deadline) break;
  }
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.cpu_seconds = thread_cpu_seconds() - cpu_start;
  return row;
}

void print_row(const char* alg, const char* what, const Row& row) {
  double per_s = static_cast<double>(row.ops) / row.seconds;
  double per_cpu_s = static_cast<double>(row.ops) / row.cpu_seconds;
  std::printf("| %-5s | %-30s | %9lld | %6.2f | %10.0f | %10.2f | %10.0f | %9.2f |\n", alg, what, row.ops,
              row.seconds, per_s, 1e6 / per_s, per_cpu_s, 1e6 / per_cpu_s);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  long long max_ops = 1000000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
      max_ops = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: token_bench [--seconds S] [--max N]\n");
      return 2;
    }
  }
  if (seconds <= 0 || max_ops <= 0) {
    std::fprintf(stderr, "token_bench: --seconds and --max must be positive\n");
    return 2;
  }

  const int64_t now = 1800000000;
  hut::Claims claims;
  claims.iss = "https://relay.example";
  claims.sub = "user-0123456789";
  claims.aud = "space-1";
  claims.jti = "0123456789abcdef0123456789abcdef";
  claims.iat = now;
  claims.exp = now + 60;
  claims.name = "Ada Lovelace";
  claims.username = "ada";

  hut::Key ed = hut::Key::generate_ed25519("relay-1").value();
  hut::Key hs = hut::Key::hs256("a 32-byte app secret for HS256!!", "").value();
  hut::TokenVerifier verifier(hut::TokenVerifier::Options{"space-1", 30, 300});
  verifier.trust(ed, claims.iss);
  verifier.trust(hs, claims.iss);

  std::printf(
      "| alg   | operation                      |       ops | wall s | ops/wall s | us/op wall |  ops/CPU s "
      "| us/op CPU |\n");
  std::printf(
      "|-------|--------------------------------|-----------|--------|------------|------------|------------|"
      "-----------|\n");
  for (const hut::Key* key : {&ed, &hs}) {
    const char* alg = key == &ed ? "EdDSA" : "HS256";
    std::string token = hut::sign_token(*key, claims).value();
    hut::Jws jws = hut::parse_jws(token).value();
    print_row(alg, "Key::sign (raw)",
              measure(seconds, max_ops, [&] { return key->sign(jws.signing_input).ok(); }));
    print_row(alg, "sign_token",
              measure(seconds, max_ops, [&] { return hut::sign_token(*key, claims).ok(); }));
    print_row(alg, "Key::verify (raw)",
              measure(seconds, max_ops, [&] { return key->verify(jws.signing_input, jws.signature); }));
    print_row(alg, "TokenVerifier::verify (full)",
              measure(seconds, max_ops, [&] { return verifier.verify(token, now).ok(); }));
  }
  return 0;
}
