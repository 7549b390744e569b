#include "sweep/plan.hpp"

#include <map>
#include <nlohmann/json.hpp>

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
    for (const char* k : {"dataset", "data-dir", "binarize", "train-size", "valid-size", "test-size",
                          "dsprites-cache"})
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
    plan.runs.push_back(std::move(r));
  }
  return plan;
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
