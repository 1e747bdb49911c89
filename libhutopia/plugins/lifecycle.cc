// Starting and stopping plugin instances (init, fini, unload, reload,
// rescan, shutdown) and creating the runtime.

#include "plugins/runtime_impl.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "plugins/toml_json.h"
#include "store/store.h"
#include "util/log.h"

namespace hut {

// Initializes a checked candidate whose dependencies are loaded. On failure
// the record says why and the library is closed.
Status RuntimeImpl::start(Candidate c) {
  const hut_plugin_descriptor* d = c.desc;
  Record& rec = record(c.name);
  rec.file = c.file;
  rec.info.version = d->version;
  rec.info.abi = std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor);
  rec.info.requires_ = c.requires_;
  rec.info.widgets.clear();
  for (size_t i = 0; i < d->widget_count; ++i) {
    rec.info.widgets.push_back(WidgetInfo{c.name, d->widgets[i].tag,
                                          "/plugins/" + c.name + "/" + std::string(d->widgets[i].script)});
  }
  auto fail = [&](std::string why) {
    if (c.dl) dlclose(c.dl);
    rec.info.widgets.clear();
    set_failed(c.name, why);
    return Status::failed_precondition(c.name + ": " + why);
  };

  Result<std::string> config = toml_file_to_json(options_.plugins_dir + "/" + c.name + ".toml");
  if (!config.ok()) return fail(std::string(config.status().message()));

  auto inst = std::make_unique<hut_plugin>();
  inst->serial = ++next_serial_;
  inst->runtime = this;
  inst->name = c.name;
  inst->component = "plugin " + c.name;
  inst->dl = c.dl;
  inst->init = c.init;
  inst->fini = c.fini;
  inst->stats = &rec.stats;
  for (size_t i = 0; i < d->asset_count; ++i) {
    std::string_view path(d->asset_paths[i]);
    inst->assets[std::string(path)] =
        PluginAsset{path, d->asset_types[i] ? d->asset_types[i] : "application/octet-stream",
                    std::string_view(reinterpret_cast<const char*>(d->asset_data[i]), d->asset_sizes[i])};
  }

  char err[1024] = {0};
  int rc = c.init(host_table(), inst.get(), config->c_str(), err, sizeof err);
  if (rc != 0) {
    err[sizeof err - 1] = '\0';
    std::string why = std::string("init failed (") + hut_strerror(rc) + ")";
    if (err[0] != '\0') why += std::string(": ") + err;
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      inst->closing = true;
    }
    // What the plugin started before it failed ends here; the releases it
    // gave run before the library is closed.
    end_timers(inst.get());
    release_room_calls(inst.get());
    drop_posts(inst.get());
    inst.reset();
    return fail(why);
  }
  rec.inst = std::move(inst);
  rec.info.state = "loaded";
  rec.info.error.clear();
  order_.push_back(c.name);
  log_printf(LogLevel::kInfo, "plugins", "loaded %s %s", c.name.c_str(), d->version);
  return Status::ok_status();
}

std::vector<std::string> RuntimeImpl::rescan() {
  std::vector<std::string> touched;
  if (shut_down_) return touched;
  std::vector<std::string> replaced;
  std::set<std::string> before;
  // A plugin that failed before and fails again the same way is no news.
  std::map<std::string, std::string> failed_before;
  for (const auto& [name, rec] : records_) {
    if (!rec.inst && rec.info.state == "failed") failed_before[name] = rec.info.error;
    if (!rec.inst) continue;
    before.insert(name);
    FileId now;
    if (rec.builtin_desc == nullptr && file_id(file_of(name), &now) && !(now == rec.file))
      replaced.push_back(name);
  }
  for (const auto& name : replaced) {
    Status st = reload(name);
    touched.push_back(name + (st.ok() ? " reloaded" : " failed: " + std::string(st.message())));
  }
  load_all();
  for (const auto& [name, rec] : records_) {
    if (before.count(name) != 0) continue;
    if (rec.inst) {
      touched.push_back(name + " loaded");
    } else if (rec.info.state == "failed") {
      auto was = failed_before.find(name);
      if (was == failed_before.end() || was->second != rec.info.error)
        touched.push_back(name + " failed: " + rec.info.error);
    }
  }
  return touched;
}

// Ends a loaded instance: answers its pending requests, ends its timers and
// queued callbacks, calls fini, closes the library.
void RuntimeImpl::stop(Record& rec, std::string_view why) {
  hut_plugin* inst = rec.inst.get();
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    inst->closing = true;
  }
  std::string message = inst->name + " is " + std::string(why);
  // The space owns the pending requests: it answers the plugin's now.
  services_->plugin_stopped(inst->name, message);
  end_timers(inst);
  release_room_calls(inst);
  if (inst->fini) inst->fini(inst);
  // Threads were stopped by fini; what they queued is dropped.
  drop_posts(inst);
  // Timers and room calls the plugin started inside fini end too.
  end_timers(inst);
  release_room_calls(inst);
  void* dl = inst->dl;
  rec.inst.reset();
  if (dl) dlclose(dl);
  order_.erase(std::remove(order_.begin(), order_.end(), rec.info.name), order_.end());
}

Status RuntimeImpl::unload(std::string_view name_view) {
  auto it = records_.find(name_view);
  if (it == records_.end() || !it->second.inst)
    return Status::not_found(std::string(name_view) + " is not loaded");
  std::vector<std::string> users;
  for (const auto& other : order_) {
    const auto& req = records_.find(other)->second.info.requires_;
    if (std::find(req.begin(), req.end(), it->first) != req.end()) users.push_back(other);
  }
  if (!users.empty()) return Status::failed_precondition(it->first + " is required by " + join(users, ", "));
  stop(it->second, "unloaded");
  it->second.info.state = "unloaded";
  it->second.info.error.clear();
  it->second.info.widgets.clear();
  log_printf(LogLevel::kInfo, "plugins", "unloaded %s", it->first.c_str());
  return Status::ok_status();
}

Status RuntimeImpl::reload(std::string_view name_view) {
  auto it = records_.find(name_view);
  if (it == records_.end() || !it->second.inst)
    return Status::not_found(std::string(name_view) + " is not loaded");
  std::string name = it->first;
  Record& rec = it->second;
  stop(rec, "reloading");
  if (rec.builtin_desc != nullptr) {
    Candidate c;
    Status st = check_descriptor(name, rec.builtin_desc, &c);
    c.init = rec.builtin_init;
    c.fini = rec.builtin_fini;
    if (!st.ok()) {
      set_failed(name, st.message());
      return Status::failed_precondition(name + ": " + std::string(st.message()));
    }
    st = start(std::move(c));
    if (st.ok()) log_printf(LogLevel::kInfo, "plugins", "reloaded %s", name.c_str());
    return st;
  }
  rec.info.state = "unloaded";
  Status st = load(name);
  if (st.ok()) {
    log_printf(LogLevel::kInfo, "plugins", "reloaded %s", name.c_str());
  } else if (rec.info.state != "failed") {
    set_failed(name, st.message());
  }
  return st;
}

void RuntimeImpl::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  while (!order_.empty()) {
    Record& rec = records_.find(order_.back())->second;
    stop(rec, "shutting down");
    rec.info.state = "unloaded";
  }
  posts_.close();
}

// ---- Creation --------------------------------------------------------------

Status RuntimeImpl::import_old_kv() {
  if (options_.data_dir.empty()) return Status::ok_status();
  const std::string file = options_.data_dir + "/plugins.db";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return Status::ok_status();
  Result<uint64_t> added = store_->import_plugin_kv(file);
  if (!added.ok()) {
    return Status::failed_precondition("cannot import the plugins' key-value data of " + file + ": " +
                                       std::string(added.status().message()) +
                                       " (move the file away to start without it)");
  }
  // The import committed; renamed, the file is not imported again. SQLite
  // removes the WAL and shared-memory files when the import's connection
  // closes; should they remain, they follow the file so that they stay a pair.
  const std::string renamed = file + ".imported";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (*suffix != '\0' && !std::filesystem::exists(file + suffix, ec)) continue;
    std::filesystem::rename(file + suffix, renamed + suffix, ec);
    if (ec) {
      return Status::io_error("imported " + file + " but cannot rename it to " + renamed + ": " +
                              ec.message());
    }
  }
  log_printf(LogLevel::kInfo, "plugins",
             "imported %llu key-value entries of %s into the store (existing entries kept); the file is "
             "now %s",
             static_cast<unsigned long long>(*added), file.c_str(), renamed.c_str());
  return Status::ok_status();
}

Result<std::unique_ptr<PluginRuntime>> PluginRuntime::create(uv_loop_t* loop, PluginServices* services,
                                                             Options options) {
  if (loop == nullptr || services == nullptr)
    return Status::invalid_argument("a plugin runtime needs a loop and services");
  if (options.store == nullptr) return Status::invalid_argument("a plugin runtime needs a store");
  if (!options.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) return Status::io_error("cannot create " + options.data_dir + ": " + ec.message());
  }
  auto rt = std::make_unique<RuntimeImpl>(loop, services, std::move(options));
  HUT_RETURN_IF_ERROR(rt->import_old_kv());
  HUT_RETURN_IF_ERROR(rt->start_posts());
  return std::unique_ptr<PluginRuntime>(std::move(rt));
}

}  // namespace hut
