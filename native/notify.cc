// One datagram to systemd's notify socket ($NOTIFY_SOCKET). Node has no unix datagram sockets,
// so this one sends synchronously on the JavaScript thread; MSG_DONTWAIT makes a full receiver
// queue an EAGAIN for the caller instead of a stalled event loop.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "common.h"
#include "exports.h"

namespace volsnap {

Napi::Value JS_sendNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "Expected (socketPath: string, message: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string message = info[1].As<Napi::String>().Utf8Value();
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    Napi::TypeError::New(env, "NOTIFY_SOCKET must be an absolute path or an abstract name starting with @")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());

  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) {
    MakeError(env, {errno, "", "socket", path, ""}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<struct sockaddr*>(&addr),
               len) < 0) {
    MakeError(env, {errno, "", "sendto", path, ""}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace volsnap
