// FIEMAP walk: how many bytes a file really holds on disk, and how many of them it shares with
// other files (reflink clones). exclusive = allocated - shared is what deleting it would free.
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <vector>

#include "common.h"
#include "exports.h"

namespace volsnap {
namespace {

constexpr unsigned kBatch = 512;

class ExtentsWorker : public PromiseWorker {
 public:
  ExtentsWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "volsnap.extents", env.Undefined()), path_(std::move(path)) {}

 protected:
  void Execute(const ExecutionProgress&) override {
    Fd fd;
    struct stat st;
    if (!OpenRegularFile(path_, &fd, &st)) return;
    size_ = static_cast<uint64_t>(st.st_size);
    blocks_ = static_cast<uint64_t>(st.st_blocks);

    std::vector<char> buf(sizeof(struct fiemap) + kBatch * sizeof(struct fiemap_extent));
    auto* fm = reinterpret_cast<struct fiemap*>(buf.data());
    uint64_t start = 0;
    bool last = false;
    bool first = true;
    while (!last) {
      std::fill(buf.begin(), buf.end(), 0);
      fm->fm_start = start;
      fm->fm_length = FIEMAP_MAX_OFFSET - start;
      // Flush delayed allocation first so the map describes real blocks.
      fm->fm_flags = first ? FIEMAP_FLAG_SYNC : 0;
      fm->fm_extent_count = kBatch;
      if (::ioctl(fd.get(), FS_IOC_FIEMAP, fm) != 0) return Fail({errno, "", "ioctl(FS_IOC_FIEMAP)", path_, ""});
      first = false;
      if (fm->fm_mapped_extents == 0) break;
      for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
        const struct fiemap_extent& e = fm->fm_extents[i];
        extentCount_++;
        allocated_ += e.fe_length;
        if (e.fe_flags & FIEMAP_EXTENT_SHARED) shared_ += e.fe_length;
        if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) unwritten_ += e.fe_length;
        if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
        start = e.fe_logical + e.fe_length;
      }
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("size", Napi::Number::New(env, static_cast<double>(size_)));
    r.Set("blocks", Napi::Number::New(env, static_cast<double>(blocks_)));
    r.Set("allocatedBytes", Napi::Number::New(env, static_cast<double>(allocated_)));
    r.Set("sharedBytes", Napi::Number::New(env, static_cast<double>(shared_)));
    r.Set("unwrittenBytes", Napi::Number::New(env, static_cast<double>(unwritten_)));
    r.Set("extentCount", Napi::Number::New(env, static_cast<double>(extentCount_)));
    return r;
  }

 private:
  std::string path_;
  uint64_t size_ = 0, blocks_ = 0, allocated_ = 0, shared_ = 0, unwritten_ = 0, extentCount_ = 0;
};

}  // namespace

Napi::Value JS_extents(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ExpectString(info, 0, "path", &path)) return info.Env().Undefined();
  auto* worker = new ExtentsWorker(info.Env(), path);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace volsnap
