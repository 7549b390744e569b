#include "sweep/worker.hpp"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <new>
#include <thread>

#include "store/provenance.hpp"
#include "store/run_identity.hpp"
#include "train/checkpoint.hpp"

namespace vae::sweep {

namespace {

using store::Claim;
using store::ResultsStore;

// Writes each epoch's metrics and each checkpoint; raises `lost` when another
// process has taken the run over (then training stops at once).
class DbHooks : public RunHooks {
 public:
  DbHooks(ResultsStore& store, const Claim& claim, std::atomic<bool>& stop_run, std::atomic<bool>& lost)
      : store_(store), claim_(claim), stop_run_(stop_run), lost_(lost) {}
  void on_epoch(int64_t epoch, const std::map<std::string, double>& metrics) override {
    if (!store_.record_epoch(claim_, epoch, metrics)) mark_lost();
  }
  void on_checkpoint(const std::string& path, const std::string& kind, int64_t epoch) override {
    if (!store_.record_artifact(claim_, kind, path, epoch)) mark_lost();
  }

 private:
  void mark_lost() {
    lost_ = true;
    stop_run_ = true;
  }
  ResultsStore& store_;
  const Claim& claim_;
  std::atomic<bool>& stop_run_;
  std::atomic<bool>& lost_;
};

// Beats the claim's heartbeat on its own connection, and turns the worker's stop
// request into the run's stop flag.
class Heartbeat {
 public:
  Heartbeat(const WorkerOptions& o, const Claim& claim, std::atomic<bool>& stop_run, std::atomic<bool>& lost)
      : thread_([&o, &claim, &stop_run, &lost, this] {
          store::Db db(o.db_path);
          ResultsStore store(db);
          auto next = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.heartbeat_s);
          std::unique_lock<std::mutex> lock(mu_);
          while (!done_) {
            cv_.wait_for(lock, std::chrono::milliseconds(200));
            if (done_) break;
            if (o.stop && o.stop->load()) stop_run = true;
            if (std::chrono::steady_clock::now() >= next) {
              lock.unlock();
              try {
                if (!store.heartbeat(claim)) {
                  lost = true;
                  stop_run = true;
                }
              } catch (const std::exception&) {
                // a missed beat is harmless; the next one retries
              }
              lock.lock();
              next = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.heartbeat_s);
            }
          }
        }) {}
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The trainer resumes from out_dir/last.ckpt. Its epoch must not be ahead of the
// epochs recorded in the database (a process killed between writing the checkpoint
// and recording the epoch): the missing epochs' metrics could never be recorded, so
// the run starts over instead. An unreadable checkpoint is dropped likewise.
// Returns a note for the run's message ("" when the checkpoint is usable or absent).
std::string check_resume_point(const Claim& claim) {
  namespace fs = std::filesystem;
  fs::path last = fs::path(claim.out_dir) / "last.ckpt";
  if (!fs::exists(last)) return "";
  std::string why;
  try {
    int64_t epoch = load_checkpoint(last.string()).epoch;
    if (epoch <= claim.resumed_from_epoch) return "";
    why = "checkpoint at epoch " + std::to_string(epoch) + " is ahead of the recorded metrics (epoch " +
          std::to_string(claim.resumed_from_epoch) + ")";
  } catch (const std::exception& e) {
    why = std::string("unreadable checkpoint (") + e.what() + ")";
  }
  std::error_code ec;
  fs::remove(last, ec);
  return "restarted from the beginning: " + why;
}

}  // namespace

WorkerReport run_worker(const WorkerOptions& o, const TrainFn& train) {
  WorkerReport report;
  store::Db db(o.db_path);
  ResultsStore store(db);
  const store::Claimant me = store::Claimant::self(o.session_id);
  auto stopping = [&] { return o.stop && o.stop->load(); };

  for (int64_t n = 0; o.max_runs < 0 || n < o.max_runs;) {
    if (stopping()) break;
    store::ClaimResult cr = store.claim_next(o.sweep_id, me, o.runs_dir, o.stale_after_s);
    if (cr.state == store::ClaimState::NothingLeft) break;
    if (cr.state == store::ClaimState::WaitForOthers) {
      auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.wait_poll_s);
      while (!stopping() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    ++n;
    const Claim& claim = cr.claim;
    std::atomic<bool> stop_run{false}, lost{false};
    store::Outcome outcome;
    std::string note;
    {
      Heartbeat beat(o, claim, stop_run, lost);
      DbHooks hooks(store, claim, stop_run, lost);
      RunOptions ro;
      ro.out_dir = claim.out_dir;
      ro.resume = true;
      ro.quiet = true;
      ro.stop = &stop_run;
      try {
        std::filesystem::create_directories(claim.out_dir);
        note = check_resume_point(claim);
        ConfigMap config = store::config_from_json(claim.config_json);
        RunResult r = train(config, ro, &hooks);
        outcome.status = r.status;
        outcome.message = r.message;
        outcome.epochs_done = r.epochs_done;
        outcome.metrics = r.metrics;
        outcome.unit_vectors = r.unit_vectors;
        outcome.data_files = r.data_files;
      } catch (const std::bad_alloc&) {
        outcome.status = "failed";
        outcome.message = "out of memory";
      } catch (const std::exception& e) {
        outcome.status = "failed";
        outcome.message = e.what();
      }
    }
    outcome.blas_threads = store::blas_threads();
    if (!note.empty()) outcome.message = note + (outcome.message.empty() ? "" : "; " + outcome.message);
    if (lost) {
      ++report.lost;  // another process owns the run now; write nothing
      continue;
    }
    if (outcome.status != "done" && outcome.status != "diverged" && outcome.status != "stopped" &&
        outcome.status != "failed") {
      outcome.message = "trainer returned unknown status '" + outcome.status + "'" +
                        (outcome.message.empty() ? "" : ": " + outcome.message);
      outcome.status = "failed";
    }
    if (!store.finish(claim, outcome)) {
      ++report.lost;
      continue;
    }
    if (outcome.status == "done" && o.delete_checkpoints) store.drop_checkpoints(claim.run_id);
    if (outcome.status == "done") ++report.done;
    else if (outcome.status == "diverged") ++report.diverged;
    else if (outcome.status == "failed") ++report.failed;
    else {
      ++report.stopped;
      break;
    }
  }
  return report;
}

}  // namespace vae::sweep
