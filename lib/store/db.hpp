// A thin RAII layer over the SQLite C API: a connection opened the way every
// vae process opens the results database (WAL, busy timeout, foreign keys,
// full sync), prepared statements, and write transactions that retry when
// another process holds the lock.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace vae::store {

class DbError : public std::runtime_error {
 public:
  DbError(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }
  // SQLITE_BUSY / SQLITE_LOCKED (any extended code): another connection holds a lock.
  bool busy() const { return (code_ & 0xff) == SQLITE_BUSY || (code_ & 0xff) == SQLITE_LOCKED; }

 private:
  int code_;
};

// A value read from or bound to a statement.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Parameters are 1-based, as in SQLite.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, int64_t(v)); }
  Stmt& bind(int i, double v);  // NaN is stored as NULL (SQLite has no NaN)
  Stmt& bind(int i, const std::string& v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind_null(int i);
  Stmt& bind(int i, const SqlValue& v);
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // Advances; true while a row is available. Throws DbError (busy() on lock contention).
  bool step();
  // Runs a statement that returns no rows, then resets it for reuse.
  void run();
  void reset();

  int columns() const;
  std::string column_name(int i) const;
  bool is_null(int i) const;
  int64_t get_int(int i) const;
  double get_double(int i) const;     // NULL reads as NaN
  std::string get_text(int i) const;  // NULL reads as ""
  SqlValue get(int i) const;
  bool readonly() const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  enum class Mode { ReadWrite, ReadOnly };
  // ReadWrite creates the file (and its folder); ReadOnly refuses to modify anything
  // (query_only) and fails with a clear message when the file does not exist.
  explicit Db(const std::string& path, Mode mode = Mode::ReadWrite);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

  void exec(const std::string& sql);
  Stmt prepare(const std::string& sql) { return Stmt(db_, sql); }
  int64_t changes() const { return sqlite3_changes64(db_); }

  // A single integer (first column of the first row); `fallback` when no row.
  int64_t scalar_int(const std::string& sql, int64_t fallback = 0);

  // Runs fn inside BEGIN IMMEDIATE ... COMMIT. The write lock is taken up front, so
  // the transaction cannot fail half-way on a lock upgrade; if the lock (or the
  // commit) meets SQLITE_BUSY beyond the busy timeout, the whole transaction is
  // rolled back and retried with back-off. Any other exception rolls back and
  // propagates. fn must be safe to re-run (no side effects outside the database).
  void write(const std::function<void()>& fn);

  // A consistent read snapshot (BEGIN DEFERRED ... COMMIT).
  void read(const std::function<void()>& fn);

 private:
  std::string path_;
  Mode mode_;
  sqlite3* db_ = nullptr;
};

// Milliseconds a connection waits for a lock before SQLITE_BUSY; write() retries beyond it.
constexpr int kBusyTimeoutMs = 10000;
// How long write() keeps retrying a busy transaction before giving up.
constexpr int kWriteRetryMs = 10 * 60 * 1000;

}  // namespace vae::store
