#include "store/db.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

namespace vae::store {

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, const std::string& context) {
  std::string msg = context + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  throw DbError(msg, db ? sqlite3_extended_errcode(db) : rc);
}

void sleep_backoff(int attempt) {
  static thread_local std::mt19937 gen{std::random_device{}()};
  int cap = std::min(1000, 20 << std::min(attempt, 6));
  std::uniform_int_distribution<int> ms(cap / 2, cap);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms(gen)));
}

}  // namespace

// ---- Stmt -------------------------------------------------------------------

Stmt::Stmt(sqlite3* db, const std::string& sql) : db_(db) {
  int rc = sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) fail(db, rc, "SQL error in '" + sql.substr(0, 80) + "'");
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::bind(int i, int64_t v) {
  if (int rc = sqlite3_bind_int64(stmt_, i, v); rc != SQLITE_OK) fail(db_, rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  if (std::isnan(v)) return bind_null(i);
  if (int rc = sqlite3_bind_double(stmt_, i, v); rc != SQLITE_OK) fail(db_, rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, const std::string& v) {
  if (int rc = sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT); rc != SQLITE_OK)
    fail(db_, rc, "bind");
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  if (int rc = sqlite3_bind_null(stmt_, i); rc != SQLITE_OK) fail(db_, rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, const SqlValue& v) {
  struct V {
    Stmt& s;
    int i;
    void operator()(std::monostate) { s.bind_null(i); }
    void operator()(int64_t x) { s.bind(i, x); }
    void operator()(double x) { s.bind(i, x); }
    void operator()(const std::string& x) { s.bind(i, x); }
  };
  std::visit(V{*this, i}, v);
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int ext = sqlite3_extended_errcode(db_);
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  throw DbError(msg + " (in '" + std::string(sqlite3_sql(stmt_)).substr(0, 80) + "')", ext);
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Stmt::columns() const { return sqlite3_column_count(stmt_); }
std::string Stmt::column_name(int i) const { return sqlite3_column_name(stmt_, i); }
bool Stmt::is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
int64_t Stmt::get_int(int i) const { return sqlite3_column_int64(stmt_, i); }
double Stmt::get_double(int i) const { return is_null(i) ? std::nan("") : sqlite3_column_double(stmt_, i); }
std::string Stmt::get_text(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(stmt_, i)))
           : std::string();
}
SqlValue Stmt::get(int i) const {
  switch (sqlite3_column_type(stmt_, i)) {
    case SQLITE_INTEGER: return get_int(i);
    case SQLITE_FLOAT: return sqlite3_column_double(stmt_, i);
    case SQLITE_NULL: return std::monostate{};
    default: return get_text(i);
  }
}
bool Stmt::readonly() const { return sqlite3_stmt_readonly(stmt_) != 0; }

// ---- Db ---------------------------------------------------------------------

Db::Db(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  namespace fs = std::filesystem;
  int flags = SQLITE_OPEN_FULLMUTEX;
  if (mode == Mode::ReadOnly) {
    if (!fs::exists(path))
      throw DbError(path + ": no results database here (run a sweep first, or pass --db)", SQLITE_CANTOPEN);
    flags |= SQLITE_OPEN_READONLY;
  } else {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      fs::create_directories(parent, ec);
      if (ec)
        throw DbError(path + ": cannot create folder " + parent.string() + " (" + ec.message() + ")",
                      SQLITE_CANTOPEN);
    }
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = path + ": cannot open database: " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close(db_);
    db_ = nullptr;
    throw DbError(msg, rc);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  try {
    if (mode == Mode::ReadWrite) {
      // Switching to WAL needs a brief exclusive lock; retry like any write.
      for (int attempt = 0;; ++attempt) {
        try {
          exec("PRAGMA journal_mode=WAL");
          break;
        } catch (const DbError& e) {
          if (!e.busy() || attempt > 200) throw;
          sleep_backoff(attempt);
        }
      }
      // FULL: a commit survives power loss, so a run recorded done stays done.
      exec("PRAGMA synchronous=FULL");
    } else {
      exec("PRAGMA query_only=1");
      // Readers (tables, `vae serve`) scan thousands of runs per request: map the file
      // instead of copying each page through read(), and keep more pages between requests.
      exec("PRAGMA mmap_size=1073741824");
      exec("PRAGMA cache_size=-65536");
    }
    exec("PRAGMA foreign_keys=ON");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw DbError(path_ + ": " + msg, sqlite3_extended_errcode(db_));
  }
}

int64_t Db::scalar_int(const std::string& sql, int64_t fallback) {
  Stmt s(db_, sql);
  return s.step() && !s.is_null(0) ? s.get_int(0) : fallback;
}

void Db::write(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    try {
      exec("BEGIN IMMEDIATE");
    } catch (const DbError& e) {
      if (!e.busy()) throw;
      auto waited = std::chrono::steady_clock::now() - start;
      if (waited > std::chrono::milliseconds(kWriteRetryMs)) throw;
      sleep_backoff(attempt);
      continue;
    }
    try {
      fn();
      exec("COMMIT");
      return;
    } catch (const DbError& e) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      auto waited = std::chrono::steady_clock::now() - start;
      if (!e.busy() || waited > std::chrono::milliseconds(kWriteRetryMs)) throw;
      sleep_backoff(attempt);
    } catch (...) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

void Db::read(const std::function<void()>& fn) {
  for (int attempt = 0;; ++attempt) {
    try {
      exec("BEGIN");
      fn();
      exec("COMMIT");
      return;
    } catch (const DbError& e) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      if (!e.busy() || attempt > 1000) throw;
      sleep_backoff(attempt);
    } catch (...) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

}  // namespace vae::store
