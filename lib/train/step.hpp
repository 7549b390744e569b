// One training step's forward and backward pass on a minibatch of stored images.
// Allocates nothing: every buffer lives in the model's Work.
#pragma once

#include "train/batch.hpp"
#include "train/objective.hpp"

namespace vae {

// Fills the batch (a fresh Bernoulli draw when dynamic) and its noise from rng, zeroes
// the gradients and accumulates d loss / d params. The caller applies the optimizer.
template <class T>
BatchLoss forward_backward(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
                           const uint32_t* index, std::size_t rows, bool dynamic, std::mt19937_64& rng,
                           const ObjectiveParams& p) {
  if (dynamic) gather_batch_binarized(w.x.ptr(), images, index, rows, rng);
  else gather_batch(w.x.ptr(), images, index, rows);
  fill_normal(w.eps.ptr(), rows * model.shape.latent, rng);
  std::fill(model.grads.begin(), model.grads.end(), T(0));
  return loss_and_grad(model, w, rows, p);
}

}  // namespace vae
