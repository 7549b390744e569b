// vae draw: pictures of a trained run (PNG): prior samples, reconstructions,
// interpolations, the 2-D latent manifold, latent traversals (draw/figures.hpp).
// Drawn for a run of the database, each picture is recorded as an artifact of it.
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

#include "command.hpp"
#include "draw/figures.hpp"
#include "draw/grid.hpp"
#include "trained_source.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

const char* kUsage =
    "vae draw WHAT (--run ID | --checkpoint PATH) --out FILE.png [options]\n\n"
    "WHAT:\n"
    "  samples          decoder means of z drawn from the prior, a --side x --side grid\n"
    "  reconstructions  --rows rows of --per-row test images, each followed by their reconstructions\n"
    "  interpolate      per pair (--from, --to) of test images: x_a, decodes along the line between\n"
    "                   their posterior means (--steps), x_b\n"
    "  manifold         2-D latent space only: decoder means on a --side x --side grid of the\n"
    "                   Gaussian's quantiles (Kingma & Welling 2013, figure 4)\n"
    "  traversals       one row per latent unit (by decreasing KL): test image --index's code with\n"
    "                   that unit set to --steps values from -limit to +limit\n"
    "Gaussian decoders are drawn by their mean; the same options give the same picture.";

std::vector<std::size_t> index_list(const po::variables_map& vm, const std::string& key) {
  std::vector<std::size_t> out;
  for (const auto& s : list_option(vm, key)) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used != s.size() || v < 0) throw std::invalid_argument(s);
      out.push_back(std::size_t(v));
    } catch (const std::exception&) {
      throw report::UsageError("--" + key + " '" + s + "': expected image indices (0, 1, ...)");
    }
  }
  return out;
}

int run_draw(const std::vector<std::string>& args) {
  po::options_description desc("vae draw options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("what", po::value<std::string>(), "samples | reconstructions | interpolate | manifold | traversals")
      ("out,o", po::value<std::string>(), "the PNG file to write")
      ("side", po::value<std::size_t>(), "samples, manifold: cells per side (default 12 and 20)")
      ("seed", po::value<uint64_t>()->default_value(0), "samples: seed of the prior draws")
      ("prior", po::value<std::string>()->default_value("model"),
       "samples: the model's prior (model), or the uniform prior over the codes (uniform; a VQ-VAE "
       "with a learned prior, --vq-prior-epochs), to compare the two")
      ("per-row", po::value<std::size_t>()->default_value(12), "reconstructions: images per row")
      ("rows", po::value<std::size_t>()->default_value(6), "reconstructions: rows of test images (each with its row of reconstructions)")
      ("first", po::value<std::size_t>()->default_value(0), "reconstructions: the first test image shown")
      ("from", po::value<std::vector<std::string>>()->composing(), "interpolate: start images (comma list; default 0,2,4,6)")
      ("to", po::value<std::vector<std::string>>()->composing(), "interpolate: end images (comma list; default 1,3,5,7)")
      ("steps", po::value<std::size_t>(), "interpolate, traversals: decoded images per row (default 10 and 11)")
      ("index", po::value<std::size_t>()->default_value(0), "traversals: the test image whose code is varied")
      ("limit", po::value<double>()->default_value(3.0), "traversals: each unit moves over [-limit, limit]")
      ("order", po::value<std::string>()->default_value("kl"),
       "traversals: rows by decreasing test-set KL of their unit (kl) or by unit index (index)")
      ("units", po::value<std::size_t>()->default_value(0), "traversals: only the first N rows of that order (0: all)")
      ("scale", po::value<std::size_t>()->default_value(1), "each pixel becomes scale x scale pixels")
      ("pad", po::value<std::size_t>()->default_value(2), "background pixels between images")
      ("background", po::value<int>()->default_value(128), "grey level of the background, 0 (black) to 255 (white)")
      ("no-record", "do not record the picture as an artifact of the run");
  // clang-format on
  add_source_options(desc);
  po::positional_options_description pos;
  pos.add("what", 1);
  po::variables_map vm;
  if (auto rc = parse("vae draw", kUsage, desc, pos, args, vm)) return *rc;
  if (!vm.count("what")) throw report::UsageError("what to draw? (vae draw --help)");
  const std::string what = vm["what"].as<std::string>();
  if (what != "samples" && what != "reconstructions" && what != "interpolate" && what != "manifold" &&
      what != "traversals")
    throw report::UsageError("'" + what +
                             "' is not one of samples, reconstructions, interpolate, manifold, traversals");
  if (!vm.count("out")) throw report::UsageError("--out FILE.png is needed");
  const std::string out = vm["out"].as<std::string>();
  if (std::filesystem::path(out).extension() != ".png")
    throw report::UsageError("--out '" + out + "': expected a .png file");
  const std::size_t scale = vm["scale"].as<std::size_t>();
  const int background = vm["background"].as<int>();
  if (background < 0 || background > 255) throw report::UsageError("--background: expected 0 to 255");
  if (vm["pad"].as<std::size_t>() > 100) throw report::UsageError("--pad: expected 0 to 100");
  if (scale == 0 || scale > 16) throw report::UsageError("--scale: expected 1 to 16");
  auto count = [&](const char* key, std::size_t dflt) {
    const std::size_t v = vm.count(key) ? vm[key].as<std::size_t>() : dflt;
    if (v == 0 || v > 1000) throw report::UsageError(std::string("--") + key + ": expected 1 to 1000");
    return v;
  };

  Source src = load_source(vm);
  Model& m = *src.trained.model;
  const data::Images& test = src.trained.data.test;
  draw::Figure fig;
  try {
    if (what == "samples") {
      const std::string prior = vm["prior"].as<std::string>();
      if (prior != "model" && prior != "uniform")
        throw report::UsageError("--prior '" + prior + "': expected model or uniform");
      if (prior == "uniform") {
        if (m.stage2_epochs() == 0)
          throw report::UsageError("--prior uniform: the run has no learned prior to compare with (a vqvae run "
                                   "with vq-prior-epochs > 0)");
        m.set_stage(1);
      }
      fig = draw::prior_samples(m, count("side", 12), vm["seed"].as<uint64_t>());
    } else if (what == "reconstructions") {
      fig = draw::reconstructions(m, test, vm["first"].as<std::size_t>(), count("per-row", 12),
                                  count("rows", 6));
    } else if (what == "interpolate") {
      std::vector<std::size_t> from = index_list(vm, "from"), to = index_list(vm, "to");
      if (from.empty()) from = {0, 2, 4, 6};
      if (to.empty()) to = {1, 3, 5, 7};
      if (from.size() != to.size())
        throw report::UsageError("--from has " + std::to_string(from.size()) + " images, --to " +
                                 std::to_string(to.size()));
      std::vector<std::pair<std::size_t, std::size_t>> pairs;
      for (std::size_t k = 0; k < from.size(); ++k) pairs.emplace_back(from[k], to[k]);
      const std::size_t steps = count("steps", 10);
      if (steps < 2) throw report::UsageError("--steps: at least 2");
      fig = draw::interpolations(m, test, pairs, steps);
    } else if (what == "manifold") {
      fig = draw::manifold(m, count("side", 20));
    } else {
      const std::size_t steps = count("steps", 11);
      if (steps < 2) throw report::UsageError("--steps: at least 2");
      const double limit = vm["limit"].as<double>();
      if (!(limit > 0 && limit < 1e6)) throw report::UsageError("--limit: expected a positive number");
      const std::string order = vm["order"].as<std::string>();
      if (order != "kl" && order != "index")
        throw report::UsageError("--order '" + order + "': expected kl or index");
      std::vector<std::size_t> units;
      if (order == "kl") {
        std::mt19937_64 rng(0);  // the KL is analytic; the noise only draws z for the reconstruction term
        units = draw::units_by_kl(m.evaluate(test, rng).vector("kl_per_dim"));
      } else {
        for (std::size_t u = 0; u < m.latent_dim(); ++u) units.push_back(u);
      }
      const std::size_t keep = vm["units"].as<std::size_t>();
      if (keep > 0 && keep < units.size()) units.resize(keep);
      fig = draw::traversals(m, test, vm["index"].as<std::size_t>(), steps, limit, units);
      std::cerr << "vae draw: traversal rows are latent units";
      for (std::size_t u : units) std::cerr << " " << u;
      std::cerr << "\n";
    }
  } catch (const std::out_of_range& e) {
    throw report::UsageError(e.what());
  } catch (const std::invalid_argument& e) {
    throw report::UsageError(e.what());
  }
  const draw::GrayImage img = draw::upscale(draw::tile(fig.cells, fig.n, test.rows, test.cols, fig.cols,
                                                       vm["pad"].as<std::size_t>(), uint8_t(background)),
                                            scale);
  if (std::filesystem::path(out).has_parent_path())
    std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  draw::write_png(out, img);

  std::ostringstream from;
  if (src.run_id) from << "run " << src.run_id->substr(0, 12);
  else from << src.trained.checkpoint;
  std::cerr << "vae draw: " << what << " of " << from.str() << " (epoch " << src.trained.epoch << ") -> " << out
            << " (" << img.width << " x " << img.height << ")";
  if (src.run_id && !vm.count("no-record")) {
    auto db = store::open_for_writing(vm["db"].as<std::string>());
    store::ResultsStore st(*db);
    const std::string path = std::filesystem::absolute(out).lexically_normal().string();
    st.record_run_artifact(*src.run_id, std::filesystem::path(out).filename().string(), path,
                           src.trained.epoch);
    std::cerr << ", recorded as an artifact";
  }
  std::cerr << "\n";
  return kExitOk;
}

Register reg({"draw", "pictures of a trained run: samples, reconstructions, interpolate, manifold, traversals",
              &run_draw});

}  // namespace
}  // namespace vae::cli
