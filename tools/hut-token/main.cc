// hut-token: keys, key sets and tokens from the command line (see docs/tokens.md).
//
//   hut-token keygen --kid K --out key.pem [--force]
//   hut-token jwks [--kid K] key.pem...
//   hut-token sign (--key key.pem --kid K | --secret S | --secret-file F) --claims JSON [--ttl S]
//   hut-token verify (--jwks FILE | --key key.pem --kid K | --secret S | --secret-file F)
//                    --aud A --iss I [--now S] [--leeway S] [--max-lifetime S]
#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <hutopia/token.h>
#include <hutopia/version.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: hut-token COMMAND [OPTIONS]\n"
    "\n"
    "  keygen --kid K --out FILE [--force]\n"
    "      Make an Ed25519 key pair, save it as PKCS#8 PEM (mode 0600) and print its\n"
    "      public JWK. An existing FILE is kept unless --force.\n"
    "  jwks [--kid K] FILE...\n"
    "      Print the JWK set of the public keys in the PEM files. --kid names the\n"
    "      key of the file after it; a file without one gets its base name (no .pem).\n"
    "  sign (--key FILE --kid K | --secret S | --secret-file FILE) --claims JSON [--ttl S]\n"
    "      Print a token: EdDSA with the PEM key, or HS256 with the secret. iat, exp\n"
    "      (iat + ttl, default 60) and jti are filled in when the claims lack them.\n"
    "  verify (--jwks FILE | --key FILE --kid K | --secret S | --secret-file FILE)\n"
    "         --aud A --iss I [--now S] [--leeway S] [--max-lifetime S]\n"
    "      Read a token on stdin and check it as a space does. Prints the claims and\n"
    "      exits 0, or prints why it was refused and exits 1.\n"
    "\n"
    "  --help, --version\n"
    "Exit status: 0 done, 1 refused or failed, 2 bad usage.\n";

struct JsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

int usage_error(const std::string& message) {
  std::cerr << "hut-token: " << message << "\n"
            << "Try 'hut-token --help'.\n";
  return 2;
}

int fail(const std::string& message) {
  std::cerr << "hut-token: " << message << "\n";
  return 1;
}

// Options of the form --name VALUE; every command takes a fixed set.
struct Args {
  std::map<std::string, std::string> opts;
  std::vector<std::pair<std::string, std::string>> files;  // jwks: (kid, path)
  bool force = false;
};

bool parse_args(int argc, char** argv, const std::vector<std::string>& allowed, bool takes_files, Args* out,
                std::string* error) {
  std::string pending_kid;
  bool have_kid = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--force") {
      out->force = true;
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      bool known = false;
      for (const auto& a : allowed) known = known || a == name;
      if (!known) {
        *error = "unknown option " + arg;
        return false;
      }
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      if (takes_files && name == "kid") {
        pending_kid = argv[++i];
        have_kid = true;
      } else {
        out->opts[name] = argv[++i];
      }
      continue;
    }
    if (!takes_files) {
      *error = "unexpected argument " + arg;
      return false;
    }
    std::string kid = pending_kid;
    if (!have_kid) {
      size_t slash = arg.rfind('/');
      kid = slash == std::string::npos ? arg : arg.substr(slash + 1);
      if (kid.size() > 4 && kid.compare(kid.size() - 4, 4, ".pem") == 0) kid.resize(kid.size() - 4);
    }
    out->files.emplace_back(kid, arg);
    have_kid = false;
  }
  if (have_kid) {
    *error = "--kid must come before the file it names";
    return false;
  }
  return true;
}

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool parse_int(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

// The HS256 secret from --secret or --secret-file (one trailing newline dropped).
std::optional<std::string> secret_option(const Args& args, std::string* error) {
  auto s = args.opts.find("secret");
  if (s != args.opts.end()) return s->second;
  auto f = args.opts.find("secret-file");
  if (f == args.opts.end()) return std::nullopt;
  std::optional<std::string> text = read_text_file(f->second);
  if (!text) {
    *error = "cannot read " + f->second;
    return std::string();
  }
  if (!text->empty() && text->back() == '\n') text->pop_back();
  return text;
}

int cmd_keygen(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(argc, argv, {"kid", "out"}, false, &args, &error)) return usage_error(error);
  if (!args.opts.count("kid") || args.opts["kid"].empty()) return usage_error("keygen needs --kid");
  if (!args.opts.count("out")) return usage_error("keygen needs --out");
  const std::string& out = args.opts["out"];
  if (!args.force && access(out.c_str(), F_OK) == 0) return fail(out + " exists (use --force to replace it)");
  hut::Result<hut::Key> key = hut::Key::generate_ed25519(args.opts["kid"]);
  if (!key.ok()) return fail(key.status().to_string());
  hut::Status saved = key->save_pem_file(out);
  if (!saved.ok()) return fail(saved.to_string());
  std::cout << key->to_jwk().value() << "\n";
  return 0;
}

int cmd_jwks(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(argc, argv, {"kid"}, true, &args, &error)) return usage_error(error);
  if (args.files.empty()) return usage_error("jwks needs at least one PEM file");
  hut::KeySet set;
  for (const auto& [kid, path] : args.files) {
    if (kid.empty()) return usage_error("empty kid for " + path);
    hut::Result<hut::Key> key = hut::Key::load_pem_file(path, kid);
    if (!key.ok()) return fail(key.status().to_string());
    if (set.find(kid) != nullptr) return fail("kid " + kid + " given twice");
    set.add(*key);
  }
  std::cout << set.to_jwks() << "\n";
  return 0;
}

int cmd_sign(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(argc, argv, {"key", "kid", "secret", "secret-file", "claims", "ttl"}, false, &args,
                  &error)) {
    return usage_error(error);
  }
  std::optional<std::string> secret = secret_option(args, &error);
  if (!error.empty()) return fail(error);
  bool has_key = args.opts.count("key") != 0;
  if (has_key == secret.has_value()) return usage_error("sign needs either --key or --secret/--secret-file");
  if (has_key && (!args.opts.count("kid") || args.opts["kid"].empty())) {
    return usage_error("sign --key needs --kid (relay tokens name their key)");
  }
  if (!args.opts.count("claims")) return usage_error("sign needs --claims");
  int64_t ttl = 60;
  if (args.opts.count("ttl") && (!parse_int(args.opts["ttl"], &ttl) || ttl <= 0)) {
    return usage_error("--ttl must be a positive number of seconds");
  }

  JsonPtr claims(cJSON_Parse(args.opts["claims"].c_str()));
  if (!cJSON_IsObject(claims.get())) return usage_error("--claims must be a JSON object");
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (!cJSON_HasObjectItem(claims.get(), "iat"))
    cJSON_AddNumberToObject(claims.get(), "iat", static_cast<double>(now));
  const cJSON* iat = cJSON_GetObjectItem(claims.get(), "iat");
  if (!cJSON_HasObjectItem(claims.get(), "exp")) {
    double base = cJSON_IsNumber(iat) ? iat->valuedouble : static_cast<double>(now);
    cJSON_AddNumberToObject(claims.get(), "exp", base + static_cast<double>(ttl));
  }
  if (!cJSON_HasObjectItem(claims.get(), "jti")) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return fail("no random bytes");
    std::string jti = hut::base64url_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
    cJSON_AddStringToObject(claims.get(), "jti", jti.c_str());
  }
  char* text = cJSON_PrintUnformatted(claims.get());
  if (text == nullptr) return fail("out of memory");
  std::string payload(text);
  cJSON_free(text);

  std::string kid = args.opts.count("kid") ? args.opts["kid"] : "";
  hut::Result<hut::Key> key =
      has_key ? hut::Key::load_pem_file(args.opts["key"], kid) : hut::Key::hs256(*secret, kid);
  if (!key.ok()) return fail(key.status().to_string());
  if (!key->has_private()) return fail(args.opts["key"] + " holds a public key only");
  hut::Result<std::string> token = hut::sign_jws(*key, payload);
  if (!token.ok()) return fail(token.status().to_string());
  std::cout << *token << "\n";
  return 0;
}

int cmd_verify(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(
          argc, argv,
          {"jwks", "key", "kid", "secret", "secret-file", "aud", "iss", "now", "leeway", "max-lifetime"},
          false, &args, &error)) {
    return usage_error(error);
  }
  std::optional<std::string> secret = secret_option(args, &error);
  if (!error.empty()) return fail(error);
  int sources = (args.opts.count("jwks") ? 1 : 0) + (args.opts.count("key") ? 1 : 0) + (secret ? 1 : 0);
  if (sources != 1) return usage_error("verify needs one of --jwks, --key or --secret/--secret-file");
  if (!args.opts.count("aud")) return usage_error("verify needs --aud");
  if (!args.opts.count("iss")) return usage_error("verify needs --iss");
  hut::TokenVerifier::Options options;
  options.audience = args.opts["aud"];
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (args.opts.count("now") && !parse_int(args.opts["now"], &now))
    return usage_error("--now must be seconds");
  if (args.opts.count("leeway") && !parse_int(args.opts["leeway"], &options.leeway_s)) {
    return usage_error("--leeway must be seconds");
  }
  if (args.opts.count("max-lifetime") && !parse_int(args.opts["max-lifetime"], &options.max_lifetime_s)) {
    return usage_error("--max-lifetime must be seconds");
  }
  hut::TokenVerifier verifier(options);
  const std::string& iss = args.opts["iss"];
  if (args.opts.count("jwks")) {
    std::optional<std::string> text = read_text_file(args.opts["jwks"]);
    if (!text) return fail("cannot read " + args.opts["jwks"]);
    hut::Result<hut::KeySet> set = hut::KeySet::parse_jwks(*text);
    if (!set.ok()) return fail(args.opts["jwks"] + ": " + std::string(set.status().message()));
    verifier.trust_set(*set, iss);
  } else if (args.opts.count("key")) {
    hut::Result<hut::Key> key = hut::Key::load_pem_file(args.opts["key"], args.opts["kid"]);
    if (!key.ok()) return fail(key.status().to_string());
    verifier.trust(*key, iss);
  } else {
    hut::Result<hut::Key> key = hut::Key::hs256(*secret, args.opts["kid"]);
    if (!key.ok()) return fail(key.status().to_string());
    verifier.trust(*key, iss);
  }

  std::string token((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  size_t start = 0;
  while (start < token.size() && std::isspace(static_cast<unsigned char>(token[start]))) ++start;
  token.erase(0, start);

  hut::Result<hut::Claims> claims = verifier.verify(token, now);
  if (!claims.ok()) {
    std::cerr << "refused: " << claims.status().message() << "\n";
    return 1;
  }
  // The signature is good: the payload can be shown as the issuer wrote it.
  hut::Result<hut::Jws> jws = hut::parse_jws(token);
  JsonPtr payload(cJSON_Parse(jws->payload_json.c_str()));
  char* text = cJSON_Print(payload.get());
  std::cout << (text != nullptr ? text : jws->payload_json) << "\n";
  cJSON_free(text);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command");
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    std::cout << "hut-token " << HUT_VERSION_STRING << " (libhutopia " << hut_version() << ")\n";
    return 0;
  }
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0) {
      std::cout << kUsage;
      return 0;
    }
  }
  if (cmd == "keygen") return cmd_keygen(argc, argv);
  if (cmd == "jwks") return cmd_jwks(argc, argv);
  if (cmd == "sign") return cmd_sign(argc, argv);
  if (cmd == "verify") return cmd_verify(argc, argv);
  return usage_error("unknown command " + cmd);
}
