// maildrop_client: a minimal POP3 front-end stand-in for end-to-end tests. It speaks the
// maildrop gRPC API the way popd does at QUIT:
//
//   maildrop_client --socket PATH --user U --password P [--delete 1,3,5] [--timeout-s N]
//                   [--show-message-id]
//
// Opens one session (tag 1) on a Sessions stream with the password, as popd does at PASS, prints
// the snapshot ("count N", then one
// "msg NUMBER OFFSET LENGTH UIDL [MESSAGE-ID]" line per message; the Message-ID is read from
// the mbox with pread at the snapshot's offsets, as popd serves RETR), and, with --delete, commits
// the listed message numbers converted to (data_offset, content hash), never sent as numbers.
// Prints "commit OK deleted=N bytes_removed=B" or "commit ERROR CODE message"; a refused open
// prints "auth ERROR CODE message" (wrong credentials) or "session ERROR CODE message". Exit: 0
// success, 1 the commit failed, 2 usage, 3 authentication or session failure.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "poplar/maildrop.grpc.pb.h"

namespace {

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "OTHER";
  }
}

// The Message-ID header's value in [offset, offset + header_length) of the file, or "-".
std::string MessageId(const std::string& path, uint64_t offset, uint64_t header_length) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "-";
  std::string head(header_length, '\0');
  ssize_t n = ::pread(fd, head.data(), head.size(), static_cast<off_t>(offset));
  ::close(fd);
  if (n < 0) return "-";
  head.resize(static_cast<size_t>(n));
  for (size_t pos = 0; pos < head.size();) {
    size_t nl = head.find('\n', pos);
    std::string line = head.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.rfind("Message-ID:", 0) == 0) {
      std::string v = line.substr(11);
      while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
      while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
      return v;
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return "-";
}

int Usage() {
  std::cerr << "usage: maildrop_client --socket PATH --user U --password P [--delete 1,3,5] "
               "[--timeout-s N]\n";
  return 2;
}

struct Args {
  std::string socket, user, password;
  std::vector<uint32_t> numbers;  // --delete
  int timeout_s = 60;
  bool show_id = false;
};

// nullopt: a usage error.
std::optional<Args> ParseArgs(int argc, char** argv) {
  Args args;
  std::string del;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a != "--show-message-id" && i + 1 >= argc) return std::nullopt;
    if (a == "--socket")
      args.socket = argv[++i];
    else if (a == "--user")
      args.user = argv[++i];
    else if (a == "--password")
      args.password = argv[++i];
    else if (a == "--delete")
      del = argv[++i];
    else if (a == "--timeout-s")
      args.timeout_s = std::stoi(argv[++i]);
    else if (a == "--show-message-id") {
      args.show_id = true;
    } else
      return std::nullopt;
  }
  if (args.socket.empty() || args.user.empty()) return std::nullopt;
  for (size_t pos = 0; pos < del.size();) {
    size_t comma = del.find(',', pos);
    std::string n = del.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      args.numbers.push_back(static_cast<uint32_t>(std::stoul(n)));
    } catch (...) {
      return std::nullopt;
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return args;
}

// "count N", then "msg NUMBER OFFSET LENGTH UIDL [MESSAGE-ID]" per message.
void PrintSnapshot(const poplar::v1::Snapshot& snap, bool show_id) {
  std::cout << "count " << snap.count() << "\n";
  size_t u = 0;
  for (int i = 0; i < snap.data_offsets_size(); ++i) {
    size_t nl = snap.uidls().find('\n', u);
    std::string uidl = snap.uidls().substr(u, nl == std::string::npos ? std::string::npos : nl - u);
    u = nl == std::string::npos ? snap.uidls().size() : nl + 1;
    std::cout << "msg " << i + 1 << " " << snap.data_offsets(i) << " " << snap.lengths(i) << " "
              << uidl;
    if (show_id)
      std::cout << " "
                << MessageId(snap.mailbox_path(), snap.data_offsets(i), snap.header_lengths(i));
    std::cout << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Args> parsed = ParseArgs(argc, argv);
  if (!parsed) return Usage();
  const Args& args = *parsed;
  auto deadline = [&] {
    return std::chrono::system_clock::now() + std::chrono::seconds(args.timeout_s);
  };
  auto channel = grpc::CreateChannel("unix:" + args.socket, grpc::InsecureChannelCredentials());
  auto stub = poplar::v1::Maildrop::NewStub(channel);

  constexpr uint64_t kTag = 1;
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline());
  auto stream = stub->Sessions(&ctx);
  poplar::v1::SessionsRequest open;
  open.set_tag(kTag);
  open.mutable_open()->set_user(args.user);
  open.mutable_open()->set_password(args.password);
  open.mutable_open()->set_client_address("127.0.0.1");
  open.mutable_open()->set_front_end("maildrop_client");
  poplar::v1::SessionsEvent ev;
  // A session's failure is an error event; a broken stream is the stream's status.
  auto print_error = [&](const char* what) {
    grpc::StatusCode code;
    std::string message;
    if (ev.has_error()) {
      code = static_cast<grpc::StatusCode>(ev.error().code());
      message = ev.error().message();
    } else {
      grpc::Status s = stream->Finish();
      code = s.error_code();
      message = s.error_message();
    }
    if (std::string(what) == "session" && code == grpc::StatusCode::UNAUTHENTICATED) what = "auth";
    std::cout << what << " ERROR " << CodeName(code) << " " << message << "\n";
  };
  if (!stream->Write(open) || !stream->Read(&ev) || !ev.has_snapshot()) {
    print_error("session");
    return 3;
  }
  const poplar::v1::Snapshot snap = ev.snapshot();
  PrintSnapshot(snap, args.show_id);
  int rc = 0;
  if (!args.numbers.empty()) {
    poplar::v1::SessionsRequest commit;
    commit.set_tag(kTag);
    for (uint32_t n : args.numbers) {
      if (n < 1 || n > snap.count()) {
        std::cerr << "maildrop_client: no message " << n << "\n";
        return 2;
      }
      poplar::v1::MessageRef* ref = commit.mutable_commit()->add_deleted();
      ref->set_data_offset(snap.data_offsets(static_cast<int>(n - 1)));
      ref->set_content_hash(snap.content_hashes().substr(16 * (n - 1), 16));
    }
    std::cout.flush();
    ev.Clear();
    if (stream->Write(commit) && stream->Read(&ev) && ev.has_committed()) {
      std::cout << "commit OK deleted=" << ev.committed().deleted()
                << " bytes_removed=" << ev.committed().bytes_removed() << "\n";
    } else {
      print_error("commit");
      return 1;
    }
  } else {
    poplar::v1::SessionsRequest close;  // nothing deleted; the lease ends
    close.set_tag(kTag);
    close.mutable_close();
    stream->Write(close);
  }
  stream->WritesDone();
  while (stream->Read(&ev)) {
  }
  grpc::Status s = stream->Finish();
  if (!s.ok() && rc == 0) {
    std::cout << "close ERROR " << CodeName(s.error_code()) << " " << s.error_message() << "\n";
    rc = 3;
  }
  return rc;
}
