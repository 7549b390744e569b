#include "sweep/plan.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "models/settings.hpp"
#include "store/run_identity.hpp"

namespace vae::sweep {

namespace {
nlohmann::ordered_json value_json(const Value& v) {
  nlohmann::ordered_json j;
  std::visit([&](const auto& x) { j = x; }, v);
  return j;
}
}  // namespace

Plan make_plan(const SweepSpec& spec, const DataFilesFn& data_files) {
  Plan plan;
  plan.spec = spec;
  plan.points = expand(spec);
  plan.varying = varying_keys(plan.points);
  std::map<std::string, std::vector<DataFile>> cache;
  for (const auto& p : plan.points) {
    ConfigMap sel;
    for (const char* k :
         {"dataset", "data-dir", "binarize", "train-size", "valid-size", "test-size", "dsprites-cache"})
      if (p.config.count(k)) sel[k] = p.config.at(k);
    std::string key = to_json(sel, false);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, data_files(p.config)).first;

    store::PlannedRun r;
    r.config = p.config;
    r.data_files = it->second;
    r.identity_json = store::identity_json(p.config, r.data_files);
    r.run_id = store::run_id_of(r.identity_json);
    r.config_json = store::config_json(p.config);
    nlohmann::ordered_json point = nlohmann::ordered_json::object();  // axis order
    for (const auto& [k, v] : p.axes) point[k] = value_json(v);
    r.point_json = point.dump();
    r.part = p.part;
    r.position = int64_t(plan.runs.size());
    plan.runs.push_back(std::move(r));
  }
  return plan;
}

int shard_of(const std::string& run_id, int n) {
  if (n < 1) throw std::invalid_argument("shard_of: n must be at least 1");
  if (run_id.size() < 16) throw std::invalid_argument("shard_of: run id '" + run_id + "' is too short");
  const uint64_t head = std::stoull(run_id.substr(0, 16), nullptr, 16);  // first 8 bytes
  return int(head % uint64_t(n));
}

Shard parse_shard(const std::string& text) {
  const auto bad = [&] {
    return SweepError("--shard '" + text + "': expected I/N with 0 <= I < N, e.g. --shard 0/4");
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) throw bad();
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  const auto digits = [](const std::string& s) {
    return s.size() <= 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(a) || !digits(b)) throw bad();
  Shard s{std::stoi(a), std::stoi(b)};
  if (s.count < 1 || s.index >= s.count) throw bad();
  return s;
}

Plan select_shard(const Plan& plan, const Shard& shard) {
  Plan out = plan;
  out.points.clear();
  out.runs.clear();
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    if (shard_of(plan.runs[i].run_id, shard.count) != shard.index) continue;
    out.points.push_back(plan.points[i]);
    out.runs.push_back(plan.runs[i]);  // keeps its position in the whole sweep
  }
  return out;
}

PlanStatus plan_status(const Plan& plan, const std::map<std::string, std::string>& statuses) {
  PlanStatus s;
  for (const auto& r : plan.runs) {
    ++s.total;
    auto it = statuses.find(r.run_id);
    if (it == statuses.end()) ++s.fresh;
    else if (it->second == "done") ++s.done;
    else if (it->second == "failed") ++s.failed;
    else if (it->second == "diverged") ++s.diverged;
    else if (it->second == "running") ++s.running;
    else ++s.queued;
  }
  return s;
}

}  // namespace vae::sweep
