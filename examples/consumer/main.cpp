// A program of one's own using vae-suite through its public API (vae/vae.hpp) only: trains
// a VAE with the given settings, prints its test ELBO, then reads the model back from its
// checkpoint and uses it. The test suite (tests/install/consumer_test.sh) builds it against
// an installed copy and checks the ELBO against `vae train` with the same settings.
//
//   consumer OUT_DIR [key=value ...]     e.g. consumer run latent=4 hidden=32 epochs=1
#include <cstdio>
#include <string>
#include <vae/vae.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consumer OUT_DIR [key=value ...]\n");
    return 2;
  }
  try {
    vae::api::Settings settings;
    for (int i = 2; i < argc; ++i) {
      const std::string kv = argv[i];
      const std::size_t eq = kv.find('=');
      if (eq == std::string::npos) throw vae::api::Error("expected key=value, got '" + kv + "'");
      settings.set(kv.substr(0, eq), kv.substr(eq + 1));
    }
    vae::api::TrainOptions options;
    options.out_dir = argv[1];
    const vae::api::TrainResult r = vae::api::train(settings, options);
    std::printf("test_elbo %.17g\n", r.metrics.at("test_elbo"));

    vae::api::Dataset data;
    vae::api::Model model = vae::api::Model::load(options.out_dir + "/last.ckpt", &data);
    const vae::api::Evaluation e = model.evaluate(data.test);
    const std::vector<float> z = model.encode(data.test, 4);
    const std::vector<float> x = model.decode(z, 4);
    const std::vector<float> prior = model.sample(4, 1);
    std::printf("reloaded: %zu parameters, latent %zu, test ELBO %.4f (rec %.4f, KL %.4f), %g active units\n",
                model.num_params(), model.latent_dim(), e.elbo, e.rec, e.kl, e.metrics.at("active_units"));
    std::printf("decoded %zu pixels of 4 test images, %zu prior codes; libvae %s\n", x.size(),
                prior.size() / model.latent_dim(), vae::api::version().c_str());
  } catch (const vae::api::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
