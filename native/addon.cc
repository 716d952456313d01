// Module entry: registers the native functions and shared helpers (errors, cancellation, workers).
#include <fcntl.h>

#include <cstring>

#include "common.h"
#include "exports.h"

namespace volsnap {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

Napi::Error MakeError(Napi::Env env, const SysError& e) {
  std::string code = e.code.empty() ? ErrnoName(e.err) : e.code;
  std::string message = e.syscall + " failed";
  if (!e.path.empty()) message += " on '" + e.path + "'";
  message += ": ";
  message += e.err != 0 ? std::string(strerror(e.err)) : std::string();
  if (!e.detail.empty()) message += (e.err != 0 ? " (" + e.detail + ")" : e.detail);
  message += " [" + code + "]";
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", code);
  error.Value().Set("syscall", e.syscall);
  if (!e.path.empty()) error.Value().Set("path", e.path);
  if (e.err != 0) error.Value().Set("errno", -e.err);
  return error;
}

Napi::Function Cancellation::Init(Napi::Env env) {
  return DefineClass(env, "Cancellation",
                     {InstanceMethod("cancel", &Cancellation::JS_cancel),
                      InstanceMethod("cancelled", &Cancellation::JS_cancelled)});
}

Cancellation::Cancellation(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Cancellation>(info) {}

Napi::Value Cancellation::JS_cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value Cancellation::JS_cancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

std::shared_ptr<std::atomic<bool>> CancelFlagFrom(const Napi::Value& v) {
  if (v.IsObject()) {
    Napi::Object o = v.As<Napi::Object>();
    Napi::Env env = o.Env();
    Napi::FunctionReference* ctor = env.GetInstanceData<Napi::FunctionReference>();
    if (ctor != nullptr && o.InstanceOf(ctor->Value())) return Cancellation::Unwrap(o)->flag();
  }
  return std::make_shared<std::atomic<bool>>(false);
}

bool IsCancelled(const std::shared_ptr<std::atomic<bool>>& flag) { return flag && flag->load(); }

int OpenSource(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  return fd;
}

PromiseWorker::PromiseWorker(Napi::Env env, const char* name, Napi::Value onProgress)
    : Napi::AsyncProgressWorker<Progress>(env, name), deferred_(Napi::Promise::Deferred::New(env)) {
  if (onProgress.IsFunction()) onProgress_ = Napi::Persistent(onProgress.As<Napi::Function>());
}

bool PromiseWorker::OpenRegularFile(const std::string& path, Fd* fd, struct stat* st) {
  fd->Reset(OpenSource(path));
  if (!fd->ok()) {
    Fail({errno, "", "open", path, ""});
    return false;
  }
  if (::fstat(fd->get(), st) != 0) {
    Fail({errno, "", "fstat", path, ""});
    return false;
  }
  if (!S_ISREG(st->st_mode)) {
    Fail({EINVAL, "", "open", path, "not a regular file"});
    return false;
  }
  return true;
}

bool PromiseWorker::FinishFile(const std::string& path, Fd* fd, uint64_t size) {
  if (::ftruncate(fd->get(), static_cast<off_t>(size)) != 0) {
    Fail({errno, "", "ftruncate", path, ""});
    return false;
  }
  if (::fsync(fd->get()) != 0) {
    Fail({errno, "", "fsync", path, ""});
    return false;
  }
  if (fd->Close() != 0) {
    Fail({errno, "", "close", path, ""});
    return false;
  }
  return true;
}

bool PromiseWorker::CreateNewFile(const std::string& path, Fd* fd) {
  fd->Reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd->ok()) {
    Fail({errno, "", "open", path, ""});
    return false;
  }
  return true;
}

void PromiseWorker::OnError(const Napi::Error&) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(MakeError(Env(), error_).Value());
}

void PromiseWorker::OnOK() {
  Napi::HandleScope scope(Env());
  deferred_.Resolve(Result(Env()));
}

void PromiseWorker::OnProgress(const Progress* data, size_t count) {
  // Sends can merge; each carries running totals, so the last one is the whole truth.
  if (onProgress_.IsEmpty() || data == nullptr || count == 0) return;
  Napi::HandleScope scope(Env());
  const Progress& p = data[count - 1];
  onProgress_.Call({Napi::Number::New(Env(), static_cast<double>(p.done)),
                    Napi::Number::New(Env(), static_cast<double>(p.total))});
}

bool ExpectString(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    Napi::TypeError::New(info.Env(), std::string("Expected string for ") + what).ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->empty() || out->find('\0') != std::string::npos) {
    Napi::TypeError::New(info.Env(), std::string("Expected a non-empty path without NUL for ") + what)
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool ExpectNumber(const Napi::CallbackInfo& info, size_t i, const char* what, double* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string("Expected number for ") + what).ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().DoubleValue();
  return true;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cancellation = Cancellation::Init(env);
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(cancellation)));
  exports.Set("Cancellation", cancellation);
  exports.Set("clone", Napi::Function::New(env, JS_clone, "clone"));
  exports.Set("copySparse", Napi::Function::New(env, JS_copySparse, "copySparse"));
  exports.Set("extents", Napi::Function::New(env, JS_extents, "extents"));
  exports.Set("sendNotify", Napi::Function::New(env, JS_sendNotify, "sendNotify"));
  exports.Set("lockFile", Napi::Function::New(env, JS_lockFile, "lockFile"));
  return exports;
}

}  // namespace volsnap

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return volsnap::Init(env, exports); }

NODE_API_MODULE(volsnap_native, InitModule)
