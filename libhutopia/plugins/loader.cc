// Opening a plugin: dlopen, the descriptor's checks (ABI first), and the
// order in which a folder's plugins start (each after what it requires).

#include "plugins/runtime_impl.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "util/log.h"

namespace hut {

bool valid_asset_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

namespace {

// The minor whose descriptor gained requires_abi.
constexpr uint32_t kRequiresAbiSince = 5;

}  // namespace

Status check_plugin_abi(const hut_plugin_descriptor& d, uint32_t host_minor) {
  auto version = [](uint32_t major, uint32_t minor) {
    return std::to_string(major) + "." + std::to_string(minor);
  };
  const std::string space = ", this space has " + version(HUT_PLUGIN_ABI_MAJOR, host_minor);
  if (d.abi_major != HUT_PLUGIN_ABI_MAJOR)
    return Status::failed_precondition("built for plugin ABI " + version(d.abi_major, d.abi_minor) + space);
  if (d.abi_minor <= host_minor) return Status::ok_status();
  // Built against a newer header. requires_abi exists in descriptors of
  // headers from 1.5 on; an older one cannot say it needs less.
  uint32_t requires_abi = d.abi_minor >= kRequiresAbiSince ? d.requires_abi : 0;
  if (requires_abi == 0)
    return Status::failed_precondition("built for plugin ABI " + version(d.abi_major, d.abi_minor) + space);
  uint32_t req_major = HUT_PLUGIN_ABI_VERSION_MAJOR(requires_abi);
  uint32_t req_minor = HUT_PLUGIN_ABI_VERSION_MINOR(requires_abi);
  if (req_major != d.abi_major || req_minor > d.abi_minor)
    return Status::failed_precondition("built for plugin ABI " + version(d.abi_major, d.abi_minor) +
                                       " but requires " + version(req_major, req_minor) +
                                       ", which is not an older minor");
  if (req_minor > host_minor)
    return Status::failed_precondition("built for plugin ABI " + version(d.abi_major, d.abi_minor) +
                                       " and requires " + version(req_major, req_minor) + space);
  return Status::ok_status();
}

Status RuntimeImpl::check_descriptor(const std::string& name, const hut_plugin_descriptor* d,
                                     Candidate* out) {
  if (d == nullptr) return Status::failed_precondition("hut_plugin_describe returned no descriptor");
  // The ABI fields come first and are checked before anything else is read.
  if (Status st = check_plugin_abi(*d); !st.ok()) return st;
  if (d->name == nullptr || name != d->name) {
    return Status::failed_precondition("the descriptor names it \"" + std::string(d->name ? d->name : "") +
                                       "\", not \"" + name + "\"");
  }
  if (d->version == nullptr) return Status::failed_precondition("the descriptor has no version");
  if (d->widget_count > 0 && d->widgets == nullptr)
    return Status::failed_precondition("the descriptor counts widgets but has none");
  for (size_t i = 0; i < d->widget_count; ++i) {
    const hut_widget_desc& w = d->widgets[i];
    if (w.tag == nullptr || std::strchr(w.tag, '-') == nullptr || w.script == nullptr ||
        !valid_asset_path(w.script))
      return Status::failed_precondition("widget " + std::to_string(i) +
                                         " needs a tag with '-' and a relative script path");
  }
  if (d->asset_count > 0 && (d->asset_paths == nullptr || d->asset_types == nullptr ||
                             d->asset_data == nullptr || d->asset_sizes == nullptr))
    return Status::failed_precondition("the descriptor counts assets but lacks their arrays");
  for (size_t i = 0; i < d->asset_count; ++i) {
    if (d->asset_paths[i] == nullptr || !valid_asset_path(d->asset_paths[i]))
      return Status::failed_precondition("asset path \"" +
                                         std::string(d->asset_paths[i] ? d->asset_paths[i] : "") +
                                         "\" is not a plain relative path");
  }
  out->name = name;
  out->desc = d;
  out->requires_.clear();
  if (d->requires_plugins != nullptr) {
    for (const char* const* r = d->requires_plugins; *r != nullptr; ++r) out->requires_.emplace_back(*r);
  }
  return Status::ok_status();
}

Result<RuntimeImpl::Candidate> RuntimeImpl::open_file(const std::string& name) {
  std::string path = file_of(name);
  FileId file;
  file_id(path, &file);  // before dlopen: a file replaced in between is seen as changed next time
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    return Status::failed_precondition(std::string("cannot open: ") + (e ? e : path.c_str()));
  }
  Candidate c;
  c.file = file;
  auto describe = reinterpret_cast<hut_plugin_describe_fn>(dlsym(dl, HUT_PLUGIN_DESCRIBE_SYMBOL));
  if (describe == nullptr) {
    dlclose(dl);
    return Status::failed_precondition("exports no " HUT_PLUGIN_DESCRIBE_SYMBOL);
  }
  Status st = check_descriptor(name, describe(), &c);
  if (!st.ok()) {
    dlclose(dl);
    return st;
  }
  c.init = reinterpret_cast<hut_plugin_init_fn>(dlsym(dl, HUT_PLUGIN_INIT_SYMBOL));
  c.fini = reinterpret_cast<hut_plugin_fini_fn>(dlsym(dl, HUT_PLUGIN_FINI_SYMBOL));
  if (c.init == nullptr) {
    dlclose(dl);
    return Status::failed_precondition("exports no " HUT_PLUGIN_INIT_SYMBOL);
  }
  c.dl = dl;
  return c;
}

void RuntimeImpl::load_all() {
  if (shut_down_) return;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(options_.plugins_dir, ec)) {
    if (entry.path().extension() != ".so") continue;
    std::string name = entry.path().stem().string();
    if (!valid_plugin_name(name)) {
      set_failed(name, "the file name is not a plugin name ([a-z0-9_-], at most 64 characters)");
      continue;
    }
    if (!is_loaded(name)) names.push_back(name);
  }
  if (ec) {
    log_printf(LogLevel::kError, "plugins", "cannot read %s: %s", options_.plugins_dir.c_str(),
               ec.message().c_str());
    return;
  }
  std::sort(names.begin(), names.end());

  std::map<std::string, Candidate> waiting;
  for (const auto& name : names) {
    Result<Candidate> c = open_file(name);
    if (!c.ok()) {
      set_failed(name, c.status().message());
      continue;
    }
    waiting.emplace(name, std::move(*c));
  }

  // Dependency order: start the first (by name) candidate whose requirements
  // are loaded; refuse those whose requirements are missing or failed; what is
  // left when nothing can move is a cycle or waits on one.
  while (!waiting.empty()) {
    bool moved = false;
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      const Candidate& c = it->second;
      bool ready = true;
      std::string blocked;
      for (const auto& r : c.requires_) {
        if (is_loaded(r)) continue;
        ready = false;
        if (waiting.count(r) == 0) {
          auto rit = records_.find(r);
          if (rit == records_.end()) {
            blocked = "requires " + r + ", which is missing";
          } else if (rit->second.info.state == "failed") {
            blocked = "requires " + r + ", which failed to load";
          } else {
            blocked = "requires " + r + ", which is not loaded";
          }
          break;
        }
      }
      if (ready) {
        Candidate cand = std::move(it->second);
        waiting.erase(it);
        (void)start(std::move(cand));
        moved = true;
        break;
      }
      if (!blocked.empty()) {
        dlclose(c.dl);
        set_failed(it->first, blocked);
        waiting.erase(it);
        moved = true;
        break;
      }
    }
    if (moved) continue;

    // Stuck: every remaining candidate waits on another remaining one.
    std::map<std::string, std::string> why;
    for (const auto& entry : waiting) {
      // A plain reference rather than a structured binding: clang 14 cannot
      // capture a binding in the lambda below.
      const std::string& name = entry.first;
      const auto& c = entry.second;
      // Depth-first search for a path from `name` back to itself.
      std::vector<std::string> path{name};
      std::set<std::string> seen;
      std::function<bool(const std::string&)> dfs = [&](const std::string& at) -> bool {
        for (const auto& r : waiting.at(at).requires_) {
          if (waiting.count(r) == 0) continue;
          if (r == name) {
            path.push_back(r);
            return true;
          }
          if (!seen.insert(r).second) continue;
          path.push_back(r);
          if (dfs(r)) return true;
          path.pop_back();
        }
        return false;
      };
      if (dfs(name)) {
        why[name] = "in a dependency cycle: " + join(path, " -> ");
      } else {
        std::string dep;
        for (const auto& r : c.requires_) {
          if (waiting.count(r)) {
            dep = r;
            break;
          }
        }
        why[name] = "requires " + dep + ", which is in a dependency cycle";
      }
    }
    for (auto& [name, c] : waiting) {
      dlclose(c.dl);
      set_failed(name, why[name]);
    }
    waiting.clear();
  }
}

Status RuntimeImpl::load(std::string_view name_view) {
  std::string name(name_view);
  if (shut_down_) return Status::failed_precondition("the plugin runtime is shut down");
  if (!valid_plugin_name(name)) return Status::invalid_argument("not a plugin name: \"" + name + "\"");
  if (is_loaded(name)) return Status::already_exists(name + " is loaded");
  std::error_code ec;
  if (!std::filesystem::exists(file_of(name), ec))
    return Status::failed_precondition("no file " + name + ".so in the plugins folder");
  Result<Candidate> c = open_file(name);
  if (!c.ok()) {
    set_failed(name, c.status().message());
    return Status::failed_precondition(name + ": " + std::string(c.status().message()));
  }
  for (const auto& r : c->requires_) {
    if (!is_loaded(r)) {
      dlclose(c->dl);
      std::string why = "requires " + r + ", which is not loaded";
      set_failed(name, why);
      return Status::failed_precondition(name + ": " + why);
    }
  }
  return start(std::move(*c));
}

Status RuntimeImpl::load_builtin(const hut_plugin_descriptor* descriptor, hut_plugin_init_fn init,
                                 hut_plugin_fini_fn fini) {
  if (shut_down_) return Status::failed_precondition("the plugin runtime is shut down");
  if (descriptor == nullptr || init == nullptr)
    return Status::invalid_argument("a builtin needs a descriptor and init");
  std::string name = descriptor->name ? descriptor->name : "";
  if (!valid_plugin_name(name)) return Status::invalid_argument("not a plugin name: \"" + name + "\"");
  if (is_loaded(name)) return Status::already_exists(name + " is loaded");
  Candidate c;
  Status st = check_descriptor(name, descriptor, &c);
  if (!st.ok()) {
    set_failed(name, st.message());
    return Status::failed_precondition(name + ": " + std::string(st.message()));
  }
  c.init = init;
  c.fini = fini;
  for (const auto& r : c.requires_) {
    if (!is_loaded(r)) {
      std::string why = "requires " + r + ", which is not loaded";
      set_failed(name, why);
      return Status::failed_precondition(name + ": " + why);
    }
  }
  Record& rec = record(name);
  rec.builtin_desc = descriptor;
  rec.builtin_init = init;
  rec.builtin_fini = fini;
  return start(std::move(c));
}

bool valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace hut
