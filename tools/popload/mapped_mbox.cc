#include "tools/popload/mapped_mbox.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/status/status.h"
#include "common/mbox/scanner.h"
#include "common/util/errno_status.h"
#include "common/util/unique_fd.h"

namespace poplar::popload {

absl::StatusOr<std::unique_ptr<MappedMbox>> MappedMbox::Map(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "fstat " + path);
  if (st.st_size == 0) return absl::FailedPreconditionError(path + " is empty");
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return ErrnoToStatus(errno, "mmap " + path);
  return std::unique_ptr<MappedMbox>(new MappedMbox(static_cast<const char*>(p), size));
}

MappedMbox::~MappedMbox() { ::munmap(const_cast<char*>(base_), size_); }

void MappedMbox::Scan() {
  mbox::ScanOptions options;
  options.final = true;
  options.trust_content_length = false;
  messages_.clear();
  for (const mbox::MessageInfo& m : mbox::ScanMbox(bytes(), 0, options).messages) {
    messages_.push_back(bytes().substr(m.data_offset, m.end_offset - m.data_offset));
  }
}

}  // namespace poplar::popload
