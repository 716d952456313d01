// An exclusive advisory lock on a file (flock), held for the life of the process: one daemon per
// state directory. The kernel drops it when the process dies, however it dies.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.h"
#include "exports.h"

namespace volsnap {

Napi::Value JS_lockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ExpectString(info, 0, "path", &path)) return env.Undefined();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    MakeError(env, {errno, "", "open", path, ""}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    // Name the holder when it wrote its pid.
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("unknown");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    MakeError(env, {err, "", "flock", path, "held by process " + holder}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int err = errno;
    ::close(fd);
    MakeError(env, {err, "", "pwrite", path, ""}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace volsnap
