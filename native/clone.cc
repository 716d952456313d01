// Reflink clones: the whole file in one FICLONE (atomic against concurrent writes), or in
// block-aligned FICLONERANGE slices when the caller wants progress and cancellation on a very
// fragmented file (each slice is atomic; the whole is point-in-time only if nobody writes).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "common.h"
#include "exports.h"

namespace volsnap {
namespace {

class CloneWorker : public PromiseWorker {
 public:
  CloneWorker(Napi::Env env, std::string src, std::string dst, uint64_t sliceBytes, Napi::Value onProgress,
              std::shared_ptr<std::atomic<bool>> cancel)
      : PromiseWorker(env, "volsnap.clone", onProgress),
        src_(std::move(src)),
        dst_(std::move(dst)),
        sliceBytes_(sliceBytes),
        cancel_(std::move(cancel)) {}

 protected:
  void Execute(const ExecutionProgress& progress) override {
    Fd in, out;
    struct stat st;
    if (!OpenRegularFile(src_, &in, &st)) return;
    size_ = static_cast<uint64_t>(st.st_size);
    if (!CreateNewFile(dst_, &out)) return;

    if (sliceBytes_ == 0 || size_ <= sliceBytes_) {
      if (::ioctl(out.get(), FICLONE, in.get()) != 0) return Fail({errno, "", "ioctl(FICLONE)", dst_, ""});
      slices_ = 1;
      SendProgress(progress, size_, size_);
    } else {
      for (uint64_t off = 0; off < size_; off += sliceBytes_) {
        if (IsCancelled(cancel_)) return Fail({ECANCELED, "ECANCELED", "clone", dst_, "cancelled"});
        struct file_clone_range range;
        range.src_fd = in.get();
        range.src_offset = off;
        // Length 0 means "to end of file", which also covers a final slice that is not
        // block-aligned and sets the clone's size to the source's.
        range.src_length = off + sliceBytes_ >= size_ ? 0 : sliceBytes_;
        range.dest_offset = off;
        if (::ioctl(out.get(), FICLONERANGE, &range) != 0)
          return Fail({errno, "", "ioctl(FICLONERANGE)", dst_, ""});
        slices_++;
        uint64_t done = off + sliceBytes_ < size_ ? off + sliceBytes_ : size_;
        SendProgress(progress, done, size_);
      }
    }
    FinishFile(dst_, &out, size_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytes", Napi::Number::New(env, static_cast<double>(size_)));
    r.Set("slices", Napi::Number::New(env, static_cast<double>(slices_)));
    return r;
  }

 private:
  std::string src_, dst_;
  uint64_t sliceBytes_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  uint64_t size_ = 0;
  uint64_t slices_ = 0;
};

}  // namespace

Napi::Value JS_clone(const Napi::CallbackInfo& info) {
  std::string src, dst;
  double slice = 0;
  if (!ExpectString(info, 0, "src", &src) || !ExpectString(info, 1, "dst", &dst) ||
      !ExpectNumber(info, 2, "sliceBytes", &slice))
    return info.Env().Undefined();
  auto* worker = new CloneWorker(info.Env(), src, dst, slice > 0 ? static_cast<uint64_t>(slice) : 0,
                                 info.Length() > 3 ? info[3] : info.Env().Undefined(),
                                 CancelFlagFrom(info.Length() > 4 ? info[4] : info.Env().Undefined()));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace volsnap
