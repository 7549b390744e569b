#include "sweep/sweep_file.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "models/settings.hpp"
#include "store/run_identity.hpp"
#include "sweep/toml_settings.hpp"

namespace vae::sweep {

namespace {

class Parser {
 public:
  Parser(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(int line, const std::string& key, const std::string& section,
                         const std::string& msg) const {
    fail_at(file_, line, key, section, msg);
  }

  const toml::table& as_table(const toml::node& n, const std::string& key) const {
    auto t = n.as_table();
    if (!t) fail(line_of(n), key, "", "expected a table, e.g. [" + key + "]");
    return *t;
  }

  std::vector<Setting> read_base(const toml::table& t, const std::string& section) const {
    return read_settings(file_, t, section);
  }

  std::vector<Axis> read_axes(const toml::table& t, const std::string& section) const {
    std::vector<Axis> out;
    for (const auto& [key, node] : in_file_order(t)) {
      Axis axis;
      axis.key = key;
      axis.line = line_of(*node);
      if (!find_option(key))
        fail(axis.line, key, section, "not a `vae train` setting" + suggestion(key, setting_names()));
      auto arr = node->as_array();
      if (!arr)
        fail(axis.line, key, section,
             "expected a list of values, e.g. " + key + " = [" + toml_text(*node) + "]");
      if (arr->empty()) fail(axis.line, key, section, "empty axis (no values)");
      std::set<std::string> seen;
      for (const auto& e : *arr) {
        int line = line_of(e) ? line_of(e) : axis.line;
        Value v = read_setting(file_, key, e, section);
        if (!seen.insert(value_to_string(v)).second)
          fail(line, key, section, "value " + value_to_string(v) + " appears twice");
        axis.values.push_back(v);
        axis.lines.push_back(line);
      }
      out.push_back(std::move(axis));
    }
    return out;
  }

  static std::string toml_text(const toml::node& n) {
    std::ostringstream s;
    n.visit([&](const auto& x) { s << x; });
    return s.str();
  }

  std::vector<int64_t> read_seeds(const toml::node& n, const std::string& section) const {
    int line = line_of(n);
    std::vector<int64_t> seeds;
    if (auto x = n.as_integer()) {
      if (x->get() < 1) fail(line, "seeds", section, "seeds = N needs N >= 1 (runs seeds 0..N-1)");
      if (x->get() > 100000) fail(line, "seeds", section, "more than 100000 seeds");
      for (int64_t i = 0; i < x->get(); ++i) seeds.push_back(i);
      return seeds;
    }
    auto arr = n.as_array();
    if (!arr) fail(line, "seeds", section, "expected a list of seeds, e.g. [0, 1, 2], or a count");
    if (arr->empty()) fail(line, "seeds", section, "empty axis (no seeds)");
    const OptionSpec& s = *find_option("seed");
    for (const auto& e : *arr) {
      int l = line_of(e) ? line_of(e) : line;
      if (!e.is_integer()) fail(l, "seeds", section, "a seed must be an integer");
      Value v;
      try {
        v = check_value(s, int64_t(e.as_integer()->get()));
      } catch (const ConfigError& err) {
        fail(l, "seeds", section, strip_key_prefix(err.what()));
      }
      int64_t seed = std::get<int64_t>(v);
      if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end())
        fail(l, "seeds", section, "seed " + std::to_string(seed) + " appears twice");
      seeds.push_back(seed);
    }
    return seeds;
  }

  std::vector<std::string> string_list(const toml::node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (auto s = n.as_string()) {
      // "latent,beta" is accepted as well as ["latent", "beta"]
      std::stringstream ss(s->get());
      std::string item;
      while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
      return out;
    }
    if (auto a = n.as_array()) {
      for (const auto& e : *a) {
        if (!e.is_string()) fail(line_of(e), key, "table", "expected strings");
        out.push_back(e.as_string()->get());
      }
      return out;
    }
    fail(line_of(n), key, "table", "expected a string or a list of strings");
  }

  // Checks the axes of one part against each other and against seeds.
  void check_part(const Part& p, const std::string& section) const {
    std::map<std::string, std::string> where;  // key -> section it is an axis of
    auto add = [&](const Axis& a, const std::string& kind) {
      if (where.count(a.key))
        fail(a.line, a.key, section + kind,
             "is already an axis in [" + section + where[a.key] + "]: a key may vary on one axis only");
      where[a.key] = kind;
      if (a.key == "seed" && !p.seeds.empty())
        fail(a.line, a.key, section + kind,
             "conflicts with seeds (line " + std::to_string(p.seeds_line) + "): use one of them");
    };
    for (const auto& a : p.grid) add(a, p.label.empty() ? "grid" : ".grid");
    for (const auto& a : p.zip) add(a, p.label.empty() ? "zip" : ".zip");
    for (size_t i = 1; i < p.zip.size(); ++i)
      if (p.zip[i].values.size() != p.zip[0].values.size())
        fail(p.zip[i].line, p.zip[i].key, section.empty() ? "zip" : section + ".zip",
             std::to_string(p.zip[i].values.size()) + " values, but '" + p.zip[0].key + "' has " +
                 std::to_string(p.zip[0].values.size()) +
                 " (zip lists are walked together and need equal lengths)");
  }

  SweepSpec parse(const std::string& text) {
    toml::table root;
    try {
      root = toml::parse(text, file_);
    } catch (const toml::parse_error& e) {
      fail(int(e.source().begin.line), "", "", std::string(e.description()));
    }
    SweepSpec spec;
    spec.file = file_;
    spec.text = text;
    spec.name = std::filesystem::path(file_).stem().string();

    std::vector<Setting> top_base;
    Part top;
    top.line = 1;
    bool top_axes = false;
    const toml::array* also = nullptr;
    for (const auto& [key, node] : in_file_order(root)) {
      int line = line_of(*node);
      if (key == "name") {
        auto s = node->as_string();
        if (!s) fail(line, key, "", "expected a string");
        const std::string& n = s->get();
        bool ok = !n.empty() && std::all_of(n.begin(), n.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
        });
        if (!ok) fail(line, key, "", "'" + s->get() + "': use letters, digits, '_', '-' and '.' only");
        spec.name = s->get();
      } else if (key == "description") {
        auto s = node->as_string();
        if (!s) fail(line, key, "", "expected a string");
        spec.description = s->get();
      } else if (key == "seeds") {
        top.seeds = read_seeds(*node, "");
        top.seeds_line = line;
      } else if (key == "base") {
        top_base = read_base(as_table(*node, key), "base");
      } else if (key == "grid") {
        top.grid = read_axes(as_table(*node, key), "grid");
        top_axes = true;
      } else if (key == "zip") {
        top.zip = read_axes(as_table(*node, key), "zip");
        top_axes = true;
      } else if (key == "also") {
        also = node->as_array();
        if (!also || !also->is_array_of_tables())
          fail(line, key, "", "expected [[also]] blocks (an array of tables)");
      } else if (key == "table") {
        read_table(as_table(*node, key), spec.table);
      } else {
        std::string hint = find_option(key) ? " (`vae train` settings go in [base], [grid] or [zip])"
                                            : suggestion(key, {"name", "description", "seeds", "base", "grid",
                                                               "zip", "also", "table"});
        fail(line, key, "", "unknown key" + hint);
      }
    }
    top.base = top_base;
    check_part(top, "");
    if (top_axes || !also) spec.parts.push_back(top);

    if (also) {
      int k = 0;
      for (const auto& elem : *also) {
        ++k;
        const toml::table& t = *elem.as_table();
        std::string section = "also #" + std::to_string(k);
        Part p;
        p.label = section;
        p.line = line_of(elem);
        p.base = top_base;
        p.seeds = top.seeds;
        p.seeds_line = top.seeds_line;
        for (const auto& [key, node] : in_file_order(t)) {
          int line = line_of(*node);
          if (key == "name") {
            auto s = node->as_string();
            if (!s) fail(line, key, section, "expected a string");
            p.label = s->get();
          } else if (key == "base") {
            for (auto& s : read_base(as_table(*node, key), section + ".base")) {
              p.base.erase(std::remove_if(p.base.begin(), p.base.end(),
                                          [&](const Setting& b) { return b.key == s.key; }),
                           p.base.end());
              p.base.push_back(std::move(s));
            }
          } else if (key == "grid") {
            p.grid = read_axes(as_table(*node, key), section + ".grid");
          } else if (key == "zip") {
            p.zip = read_axes(as_table(*node, key), section + ".zip");
          } else if (key == "seeds") {
            p.seeds = read_seeds(*node, section);
            p.seeds_line = line;
          } else {
            std::string hint = find_option(key) ? " (settings of a sub-sweep go in its base, grid or zip)"
                                                : suggestion(key, {"name", "base", "grid", "zip", "seeds"});
            fail(line, key, section, "unknown key" + hint);
          }
        }
        check_part(p, section);
        spec.parts.push_back(std::move(p));
      }
    }
    return spec;
  }

  void read_table(const toml::table& t, TableDefaults& d) const {
    for (const auto& [key, node] : in_file_order(t)) {
      int line = line_of(*node);
      if (key == "rows") d.rows = string_list(*node, key);
      else if (key == "cols") d.cols = string_list(*node, key);
      else if (key == "metric" || key == "metrics") d.metrics = string_list(*node, key);
      else if (key == "agg" || key == "best") {
        auto s = node->as_string();
        if (!s) fail(line, key, "table", "expected a string");
        (key == "agg" ? d.agg : d.best) = s->get();
      } else {
        fail(line, key, "table", "unknown key" + suggestion(key, {"rows", "cols", "metric", "agg", "best"}));
      }
    }
  }

 private:
  std::string file_;
};

}  // namespace

SweepSpec parse_sweep_text(const std::string& text, const std::string& file_name) {
  return Parser(file_name).parse(text);
}

SweepSpec parse_sweep_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw SweepError(path + ": cannot open sweep file (" + std::strerror(errno) + ")");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_sweep_text(ss.str(), path);
}

void apply_overrides(SweepSpec& spec, const std::vector<std::string>& assignments) {
  for (const auto& a : assignments) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw SweepError("--set '" + a + "': expected KEY=VALUE, e.g. --set epochs=2");
    std::string key = a.substr(0, eq), text = a.substr(eq + 1);
    const OptionSpec* s = find_option(key);
    if (!s)
      throw SweepError("--set '" + a + "': key '" + key + "' is not a `vae train` setting" +
                       suggestion(key, setting_names()));
    Value v;
    try {
      v = parse_value(*s, text);
    } catch (const ConfigError& e) {
      throw SweepError("--set '" + a + "': " + e.what());
    }
    for (auto& part : spec.parts) {
      for (const auto* axes : {&part.grid, &part.zip})
        for (const auto& axis : *axes)
          if (axis.key == key)
            throw SweepError("--set '" + a + "': key '" + key + "' is an axis of the sweep (" + spec.file +
                             ":" + std::to_string(axis.line) + ")");
      if (key == "seed" && !part.seeds.empty())
        throw SweepError("--set '" + a + "': the sweep sets seeds (" + spec.file + ":" +
                         std::to_string(part.seeds_line) + ")");
      part.base.erase(std::remove_if(part.base.begin(), part.base.end(),
                                     [&](const Setting& b) { return b.key == key; }),
                      part.base.end());
      part.base.push_back({key, v, 0});
    }
  }
}

TableDefaults default_table(const SweepSpec& spec) {
  TableDefaults d = spec.table;
  if (d.rows.empty() && !spec.parts.empty()) {
    std::vector<std::string> axes;
    for (const auto& p : spec.parts) {
      for (const auto* list : {&p.grid, &p.zip})
        for (const auto& a : *list)
          if (a.key != "seed" && std::find(axes.begin(), axes.end(), a.key) == axes.end())
            axes.push_back(a.key);
    }
    if (!axes.empty()) d.rows = {axes[0]};
    if (d.cols.empty() && axes.size() > 1) d.cols = {axes[1]};
  }
  if (d.metrics.empty()) d.metrics = {"test_nll"};
  if (d.agg.empty()) d.agg = "mean_se";
  if (d.best.empty()) d.best = "auto";
  return d;
}

std::string short_text(const Value& v) {
  if (auto d = std::get_if<double>(&v)) {
    char buf[40];
    for (int p = 1; p <= 17; ++p) {
      std::snprintf(buf, sizeof buf, "%.*g", p, *d);
      if (std::strtod(buf, nullptr) == *d) break;
    }
    return buf;
  }
  return value_to_string(v);
}

std::string Point::describe() const {
  std::string s;
  for (const auto& [k, v] : axes) s += (s.empty() ? "" : " ") + k + "=" + short_text(v);
  return s.empty() ? "(base)" : s;
}

std::vector<Point> expand(const SweepSpec& spec) {
  std::vector<Point> points;
  std::map<std::string, size_t> seen;  // identity JSON (config only) -> index
  for (size_t pi = 0; pi < spec.parts.size(); ++pi) {
    const Part& part = spec.parts[pi];
    ConfigMap base = default_config();
    std::map<std::string, int> origin;  // key -> line that set it
    for (const auto& s : part.base) {
      base[s.key] = s.value;
      origin[s.key] = s.line;
    }
    std::vector<int64_t> seeds = part.seeds;
    const bool seed_axis = !seeds.empty();
    if (!seed_axis) seeds = {-1};

    // grid points as index vectors, the last axis fastest
    std::vector<std::vector<size_t>> grid_points{{}};
    for (const auto& axis : part.grid) {
      std::vector<std::vector<size_t>> next;
      for (const auto& g : grid_points)
        for (size_t i = 0; i < axis.values.size(); ++i) {
          auto h = g;
          h.push_back(i);
          next.push_back(std::move(h));
        }
      grid_points = std::move(next);
    }
    const size_t zip_n = part.zip.empty() ? 1 : part.zip[0].values.size();

    for (int64_t seed : seeds) {
      for (const auto& g : grid_points) {
        for (size_t z = 0; z < zip_n; ++z) {
          Point p;
          p.part = int(pi);
          ConfigMap c = base;
          std::map<std::string, int> from = origin;
          for (size_t a = 0; a < part.grid.size(); ++a) {
            const Axis& axis = part.grid[a];
            c[axis.key] = axis.values[g[a]];
            from[axis.key] = axis.lines[g[a]];
            p.axes.emplace_back(axis.key, axis.values[g[a]]);
          }
          for (const auto& axis : part.zip) {
            c[axis.key] = axis.values[z];
            from[axis.key] = axis.lines[z];
            p.axes.emplace_back(axis.key, axis.values[z]);
          }
          if (seed_axis) {
            c["seed"] = seed;
            from["seed"] = part.seeds_line;
            p.axes.emplace_back("seed", seed);
          }
          try {
            p.config = store::canonical_config(c);
          } catch (const ConfigError& e) {
            // the key named in "... key 'sigma': ..."
            std::string what = e.what(), key;
            size_t at = what.find("key '");
            if (at != std::string::npos) {
              size_t end = what.find('\'', at + 5);
              if (end != std::string::npos) key = what.substr(at + 5, end - at - 5);
            }
            int line = from.count(key) ? from[key] : part.line;
            std::ostringstream msg;
            if (line > 0) msg << spec.file << ":" << line << ": ";
            else msg << spec.file << ": (set by --set) ";
            msg << what << " (run " << p.describe();
            if (!part.label.empty()) msg << " of [[also]] '" << part.label << "'";
            msg << ")";
            throw SweepError(msg.str());
          }
          std::string id = to_json(p.config, true);
          auto [it, fresh] = seen.emplace(id, points.size());
          if (!fresh) {
            const Point& q = points[it->second];
            // name what differs (settings that do not change results)
            std::string diff;
            for (const auto& [k, v] : p.config)
              if (value_to_string(v) != value_to_string(q.config.at(k))) diff += (diff.empty() ? "" : ", ") + k;
            std::ostringstream msg;
            msg << spec.file << ":" << part.line << ": runs '" << q.describe() << "' and '" << p.describe()
                << "' are the same run"
                << (diff.empty() ? std::string(" (identical settings)")
                                 : " (they differ only in " + diff + ", which does not change results)");
            throw SweepError(msg.str());
          }
          points.push_back(std::move(p));
        }
      }
    }
  }
  return points;
}

std::vector<std::string> varying_keys(const std::vector<Point>& points) {
  std::vector<std::string> keys;
  if (points.empty()) return keys;
  for (const auto& o : train_options()) {
    const std::string v0 = value_to_string(points[0].config.at(o.key));
    for (const auto& p : points)
      if (value_to_string(p.config.at(o.key)) != v0) {
        keys.push_back(o.key);
        break;
      }
  }
  return keys;
}

}  // namespace vae::sweep
