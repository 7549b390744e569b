// The results database schema, as numbered migrations (PRAGMA user_version).
// A migration is appended, never edited: a database made by any earlier build
// is brought forward step by step, each step in one transaction.
#pragma once

#include <string>
#include <vector>

#include "store/db.hpp"

namespace vae::store {

struct Migration {
  int version;          // user_version after it ran
  std::string summary;  // one line, shown by `vae runs --schema`
  std::string sql;
};

const std::vector<Migration>& migrations();
int latest_schema_version();

// Brings the database to `target` (default: latest). Safe when several processes
// do it at once: the version is read again under the write lock. Throws DbError
// when the database is newer than this build knows.
void migrate(Db& db, int target = -1);

int schema_version(Db& db);

// For read-only commands: throws a clear error when the file is not a vae results
// database or was written by a newer build; an older version is fine for reading
// only when it has every table the reader needs (it is never modified).
void check_readable(Db& db);

}  // namespace vae::store
