// `poplarctl migrate config QPOPPER_CONFIG [QPOPPER_FLAGS...]`: Poplar's indexer and popd
// configurations for a Qpopper site (issue 16), from its qpopper.config (`set OPTION = VALUE`,
// `set OPTION`, `reset OPTION`, `#` comments, quoted values, nested config-file) and the flags
// its inetd line or init script passed (-S, -p 2, -T 600, -l 2, -e login_delay=..., [addr][:port],
// ...; qpopper.md §5). Every option gets one line in the report: what it became, or why Poplar
// has no equivalent (not needed by its design, or not there yet).
#ifndef POPLAR_TOOLS_POPLARCTL_MIGRATE_CONFIG_H_
#define POPLAR_TOOLS_POPLARCTL_MIGRATE_CONFIG_H_

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "poplar/config.pb.h"
#include "poplar/popd_config.pb.h"

namespace poplar::poplarctl {

struct TranslationNote {
  std::string option;  // as Qpopper names it ("clear-text-password", "-p")
  std::string value;
  bool mapped = false;  // true: `text` says what it became; false: why there is no equivalent
  std::string text;
};

struct Translation {
  config::IndexerConfig indexer;
  config::PopdConfig popd;
  std::vector<TranslationNote> notes;
};

// Reads an included config-file (nested `set config-file`); nullopt if it cannot be read.
using IncludeReader = std::function<std::optional<std::string>(const std::string& path)>;

// InvalidArgument for a line or flag Qpopper would reject (unknown option, bad value).
absl::StatusOr<Translation> TranslateQpopperConfig(std::string_view config_text,
                                                   const std::vector<std::string>& flags,
                                                   const IncludeReader& include);

// Both configurations as text-format files and the report, as `migrate config` prints them.
std::string RenderTranslation(const Translation& t);

// `poplarctl migrate config ...` after "config". Exit code: 0, 2 usage or a bad config.
int RunMigrateConfig(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_MIGRATE_CONFIG_H_
