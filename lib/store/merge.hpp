// Folding results databases into one (`vae merge OUT.db SHARD.db ...`): the shards
// of a sweep that ran as a cluster job array, each into its own file, because
// SQLite's locking is not to be trusted on the network file systems clusters share.
//
// Keyed by run identity. A finished run (done, failed, diverged) that OUT lacks is
// copied with everything recorded about it: params, data checksums, epoch and final
// metrics, attempts (with their sessions' provenance), artifacts and its membership
// of sweeps (matched by name). A run OUT already holds with the same status and the
// same final metrics (timings, whose names end in _s, aside) is skipped, so merging again changes nothing and
// the order of the shards does not matter. The same run with a different status or different final metrics is a
// conflict: reported, never overwritten. A run OUT holds only as unfinished (queued or interrupted) is replaced
// by a finished copy. Unfinished runs of a shard are not copied (run that shard again). One transaction per
// shard.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace vae::store {

struct MergeConflict {
  std::string run_id;
  std::string why;  // "status done here, failed in SHARD" or "test_nll 88.1 here, 88.3 in SHARD"
};

struct MergeReport {
  std::string shard;
  int64_t copied = 0;       // runs new to OUT (or replacing an unfinished one)
  int64_t identical = 0;    // already in OUT with the same results
  int64_t unfinished = 0;   // queued or running in the shard: not copied
  int64_t memberships = 0;  // sweep memberships added
  std::vector<MergeConflict> conflicts;
};

// Merges one shard into `out` (a results database opened for writing, migrated).
// The shard is upgraded to the current schema first if it is older. Throws DbError
// naming the file when the shard is missing or not a vae results database.
MergeReport merge_database(Db& out, const std::string& shard_path);

// The tables merge_database knows how to copy. A migration that adds a table must
// teach merge_database about it (a test compares this list with the schema).
const std::vector<std::string>& merged_tables();

}  // namespace vae::store
