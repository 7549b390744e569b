// Disentanglement metrics of a representation against known factors of
// variation, computed from the encoder's means E_q[z|x] as in disentanglement_lib
// (Locatello et al. 2019, github.com/google-research/disentanglement_lib), whose
// protocol constants are the defaults below:
//
//  - beta-VAE metric (Higgins et al. 2017, "beta-VAE: Learning basic visual
//    concepts with a constrained variational framework", ICLR, sec. 3): a point is
//    made by choosing a factor k, drawing `batch` pairs of factor vectors that agree
//    on factor k only, and averaging |z(x1) - z(x2)| over the pairs. A linear
//    classifier (multinomial logistic regression) predicts k from that vector;
//    the score is its accuracy on `num_eval` fresh points. disentanglement_lib
//    fits scikit-learn's LogisticRegression (L2, C = 1) on the raw features; we fit
//    the same objective by full-batch gradient descent on features standardised
//    with the training points' mean and deviation, so that the score does not
//    depend on the units of each latent dimension.
//  - FactorVAE metric (Kim & Mnih 2018, "Disentangling by Factorising", ICML,
//    sec. 4): each latent dimension's variance over `num_variance` random
//    examples normalises it; a vote is made by fixing factor k at one random
//    value across `batch` examples and taking the dimension of least normalised
//    variance (unbiased variances). A majority-vote classifier (the factor each
//    dimension votes for most in training) is scored on `num_eval` fresh votes.
//    Dimensions of zero variance are left out (disentanglement_lib's threshold
//    is 0 as well: it prunes nothing else).
//  - MIG (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
//    NeurIPS, eq. 5): each latent mean is discretised into `mig_bins` (20)
//    equal-width bins between its minimum and maximum over `num_train` random
//    examples; for each factor the gap between the largest and second largest
//    mutual information I(z_j; v_k) (natural log), divided by the entropy H(v_k),
//    averaged over the factors.
//  - DCI disentanglement (Eastwood & Williams 2018) is not implemented: it needs a
//    regressor with feature importances (lasso or gradient-boosted trees).
//
// Everything is a function of `seed` alone: the same representation gives the
// same scores bit for bit. Each metric draws from its own stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vae {
class Model;
}

namespace vae::eval {

// The representation of n examples given by their factor classes (n x K, row
// major, class c of factor k in 0..sizes[k]-1): n x L codes, row major.
using Representation = std::function<std::vector<double>(const std::vector<uint32_t>& classes, std::size_t n)>;

struct DisentangleOptions {
  std::size_t batch = 64;            // examples per point (beta-VAE: pairs), disentanglement_lib
  std::size_t num_train = 10000;     // classifier training points; MIG examples
  std::size_t num_eval = 5000;       // classifier evaluation points
  std::size_t num_variance = 10000;  // FactorVAE: examples for the global variances
  std::size_t mig_bins = 20;
  std::size_t logreg_steps = 2000;  // gradient-descent steps of the beta-VAE classifier
  uint64_t seed = 20180101;
};

struct BetaVaeScore {
  double train_accuracy = 0, eval_accuracy = 0;
};
struct FactorVaeScore {
  double train_accuracy = 0, eval_accuracy = 0;
  std::size_t active_dims = 0;
};
struct MigScore {
  double mig = 0;
  std::vector<double> per_factor;  // gap / H(v_k) of each factor
};

BetaVaeScore beta_vae_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                             const DisentangleOptions& o);
FactorVaeScore factor_vae_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                                 const DisentangleOptions& o);
MigScore mig_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                    const DisentangleOptions& o);

// Mutual information (nats) between two discrete samples a[i] in 0..na-1 and
// b[i] in 0..nb-1, from their joint histogram; and the entropy of one.
double discrete_mutual_info(const std::vector<uint32_t>& a, std::size_t na, const std::vector<uint32_t>& b,
                            std::size_t nb);
double discrete_entropy(const std::vector<uint32_t>& a, std::size_t na);

// The three metrics as run metrics: beta_vae_metric, beta_vae_train, factor_vae_metric,
// factor_vae_train, factor_vae_active, mig, mig_<factor name> (names.size() == sizes.size()).
std::map<std::string, double> all_metrics(const std::vector<std::size_t>& sizes,
                                          const std::vector<std::string>& names, const Representation& rep,
                                          const DisentangleOptions& o);

// A model's encoder means on rendered dSprites images, as a Representation.
Representation dsprites_encoder(Model& model);
// all_metrics on the dSprites grid with that representation, plus the protocol
// used (disent_batch, disent_train, disent_eval).
std::map<std::string, double> dsprites_metrics(Model& model, const DisentangleOptions& o);

}  // namespace vae::eval
