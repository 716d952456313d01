// Shared pieces of the native layer: errno-carrying failures, fd ownership, the cancel flag,
// and a Promise-returning progress worker. The native layer only moves bytes and makes syscalls;
// every policy decision (paths, retries, which method) is made in TypeScript (src/fs/).
#pragma once

#include <napi.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace volsnap {

// A failed syscall: what the TypeScript side turns into a NativeError(code, syscall, path).
struct SysError {
  int err = 0;              // errno, or 0 with `code` set for conditions that are not errnos
  std::string code;         // overrides the errno name when set (e.g. "ELEASEBROKEN")
  std::string syscall;
  std::string path;
  std::string detail;       // extra words for the message
};

std::string ErrnoName(int err);
Napi::Error MakeError(Napi::Env env, const SysError& e);

// Closes the descriptor when the owner goes out of scope; every early return stays leak-free.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset(int fd) { Close(); fd_ = fd; }
  int Close() {
    int r = 0;
    if (fd_ >= 0) r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_ = -1;
};

// A flag JavaScript sets (AbortSignal → cancel()) and a worker thread reads between chunks.
class Cancellation : public Napi::ObjectWrap<Cancellation> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Cancellation(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag() const { return flag_; }

 private:
  Napi::Value JS_cancel(const Napi::CallbackInfo& info);
  Napi::Value JS_cancelled(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

// Unwraps an optional Cancellation argument; returns a never-set flag when absent.
std::shared_ptr<std::atomic<bool>> CancelFlagFrom(const Napi::Value& v);

struct Progress {
  uint64_t done;
  uint64_t total;
};

// An AsyncProgressWorker that settles a Promise: Execute() runs on the libuv pool and touches
// only plain C++ data; OnOK()/OnError() run on the JavaScript thread.
class PromiseWorker : public Napi::AsyncProgressWorker<Progress> {
 public:
  PromiseWorker(Napi::Env env, const char* name, Napi::Value onProgress);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Fail(SysError e) {
    error_ = std::move(e);
    SetError(error_.syscall);
  }
  // Opens a regular file to read (O_NOATIME where allowed) and reads its stat; on failure records
  // the error and returns false.
  bool OpenRegularFile(const std::string& path, Fd* fd, struct stat* st);
  // Gives the new file its exact size (holes at the end stay holes), makes it durable, closes it.
  bool FinishFile(const std::string& path, Fd* fd, uint64_t size);
  // Creates a new file to write, never an existing one (O_EXCL), mode 0600.
  bool CreateNewFile(const std::string& path, Fd* fd);
  // Send() copies the value into the worker's own buffer, so it goes by address, not by new.
  static void SendProgress(const ExecutionProgress& progress, uint64_t done, uint64_t total) {
    Progress p{done, total};
    progress.Send(&p, 1);
  }
  void OnError(const Napi::Error&) override;
  void OnOK() override;
  void OnProgress(const Progress* data, size_t count) override;
  virtual Napi::Value Result(Napi::Env env) = 0;

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  SysError error_;
};

bool IsCancelled(const std::shared_ptr<std::atomic<bool>>& flag);

// Opens a volume for reading without updating its atime (reading a volume is not using it).
// O_NOATIME needs the file's owner or CAP_FOWNER; without either, an ordinary read-only open.
int OpenSource(const std::string& path);

// Argument checks for misuse from JavaScript: a TypeError, never a crash. The TypeScript face
// validates first, so these only catch a caller that bypasses it.
bool ExpectString(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out);
bool ExpectNumber(const Napi::CallbackInfo& info, size_t i, const char* what, double* out);

}  // namespace volsnap
