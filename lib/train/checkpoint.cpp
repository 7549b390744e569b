#include "train/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace vae {

namespace {
constexpr char kMagic[8] = {'V', 'A', 'E', 'C', 'K', 'P', 'T', '2'};  // 2: with model state

void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t k = ::write(fd, c, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": write failed (" + std::strerror(errno) + ")");
    }
    c += k;
    n -= size_t(k);
  }
}

void fsync_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  nlohmann::json h = {{"identity", c.identity},           {"epoch", c.epoch},
                      {"config", c.config_json},          {"n_params", c.params.size()},
                      {"n_state", c.model_state.size()},  {"n_opt_a", c.opt_a.size()},
                      {"n_opt_b", c.opt_b.size()},        {"opt_t", c.opt_t},
                      {"rng_state", c.rng_state},         {"best_valid_elbo", c.best_valid_elbo},
                      {"best_epoch", c.best_epoch},       {"last_loss", c.last_loss},
                      {"train_seconds", c.train_seconds}, {"train_cpu_seconds", c.train_cpu_seconds},
                      {"samples_done", c.samples_done},   {"best_epoch_seconds", c.best_epoch_seconds}};
  const std::string header = h.dump();
  const uint64_t header_len = header.size();
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(tmp + ": cannot create (" + std::strerror(errno) + ")");
  try {
    write_all(fd, kMagic, sizeof kMagic, tmp);
    write_all(fd, &header_len, sizeof header_len, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const auto* v : {&c.params, &c.model_state, &c.opt_a, &c.opt_b})
      write_all(fd, v->data(), v->size() * sizeof(float), tmp);
    if (::fsync(fd) != 0) throw std::runtime_error(tmp + ": fsync failed");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(path + ": rename failed (" + std::strerror(errno) + ")");
  fsync_dir(path);
}

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open checkpoint");
  char magic[8];
  uint64_t header_len = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
    throw std::runtime_error(path + ": not a vae-suite checkpoint (bad magic)");
  if (!in.read(reinterpret_cast<char*>(&header_len), sizeof header_len) || header_len > (1u << 20))
    throw std::runtime_error(path + ": truncated checkpoint header");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), std::streamsize(header_len)))
    throw std::runtime_error(path + ": truncated checkpoint header");
  Checkpoint c;
  try {
    auto h = nlohmann::json::parse(header);
    c.identity = h.at("identity");
    c.epoch = h.at("epoch");
    c.config_json = h.at("config");
    c.params.resize(h.at("n_params").get<size_t>());
    c.model_state.resize(h.at("n_state").get<size_t>());
    c.opt_a.resize(h.at("n_opt_a").get<size_t>());
    c.opt_b.resize(h.at("n_opt_b").get<size_t>());
    c.opt_t = h.at("opt_t");
    c.rng_state = h.at("rng_state");
    c.best_valid_elbo = h.at("best_valid_elbo");
    c.best_epoch = h.at("best_epoch");
    c.last_loss = h.at("last_loss");
    c.train_seconds = h.value("train_seconds", 0.0);
    c.train_cpu_seconds = h.value("train_cpu_seconds", 0.0);
    c.samples_done = h.value("samples_done", 0.0);
    c.best_epoch_seconds = h.value("best_epoch_seconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": bad checkpoint header (" + e.what() + ")");
  }
  for (auto* v : {&c.params, &c.model_state, &c.opt_a, &c.opt_b})
    if (!in.read(reinterpret_cast<char*>(v->data()), std::streamsize(v->size() * sizeof(float))))
      throw std::runtime_error(path + ": truncated checkpoint (parameters missing)");
  return c;
}

std::string rng_to_string(const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  return s.str();
}

void rng_from_string(std::mt19937_64& rng, const std::string& text) {
  std::istringstream s(text);
  s >> rng;
}

}  // namespace vae
