// SIGHUP on poplar-indexer: what changed between the running configuration and the file now,
// and what of it a running indexer takes. Pure (style: the decision apart from the I/O).
//
// Taken at once: log.level. Everything else is reported by name as needing a restart: the
// indexer's parts (spool watcher, owner checks, account store, PAM threads, leases) are built
// from the configuration at start and have no way yet to be re-configured in place (issue 14
// leaves live reload of spools, owner checks and limits to a later change of indexer/indexer.*).
#ifndef POPLAR_INDEXER_RELOAD_H_
#define POPLAR_INDEXER_RELOAD_H_

#include <string>
#include <vector>

#include "poplar/config.pb.h"

namespace poplar::indexer {

struct ReloadPlan {
  std::vector<std::string> applied;       // field paths applied now ("log.level")
  std::vector<std::string> need_restart;  // field paths that changed but wait for a restart
};

ReloadPlan PlanReload(const config::IndexerConfig& running, const config::IndexerConfig& next);

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_RELOAD_H_
