// Hole-preserving copy: walk the source's data extents with SEEK_DATA/SEEK_HOLE and move each
// with copy_file_range in bounded chunks (pread/pwrite where the kernel refuses). Holes are never
// written; the final ftruncate gives the copy the source's exact size. Optionally holds a read
// lease on the source so a writer opening it is noticed (the copy is then not point-in-time).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common.h"
#include "exports.h"

namespace volsnap {
namespace {

enum LeaseMode { kLeaseNone = 0, kLeaseTry = 1, kLeaseRequire = 2 };

constexpr size_t kFallbackBuffer = 128 << 10;

class CopySparseWorker : public PromiseWorker {
 public:
  CopySparseWorker(Napi::Env env, std::string src, std::string dst, uint64_t chunk, int leaseMode,
                   bool dropSourceCache, Napi::Value onProgress, std::shared_ptr<std::atomic<bool>> cancel)
      : PromiseWorker(env, "volsnap.copySparse", onProgress),
        src_(std::move(src)),
        dst_(std::move(dst)),
        chunk_(chunk),
        leaseMode_(leaseMode),
        dropSourceCache_(dropSourceCache),
        cancel_(std::move(cancel)) {}

 protected:
  void Execute(const ExecutionProgress& progress) override {
    Fd in, out;
    struct stat st;
    if (!OpenRegularFile(src_, &in, &st)) return;
    size_ = static_cast<uint64_t>(st.st_size);

    if (leaseMode_ != kLeaseNone) {
      // A lease break signals the fd's owner, which F_SETLEASE makes this process: SIGIO by
      // default, whose default action ends the process. Ask for SIGURG (default: ignored) before
      // taking the lease, so a writer arriving at any moment cannot kill us, then clear the owner;
      // the break is seen by polling F_GETLEASE.
      ::fcntl(in.get(), F_SETSIG, SIGURG);
      // The kernel grants a read lease only while no one has the file open for writing.
      if (::fcntl(in.get(), F_SETLEASE, F_RDLCK) == 0) {
        leaseHeld_ = true;
        ::fcntl(in.get(), F_SETOWN, 0);
      } else if (leaseMode_ == kLeaseRequire) {
        return Fail({errno, "", "fcntl(F_SETLEASE)", src_, "the file is open for writing"});
      }
    }

    if (!CreateNewFile(dst_, &out)) return;

    // Volumes are read front to back once: a larger readahead window, as cp asks for.
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    if (!CountData(in.get())) return;
    SendProgress(progress, 0, dataBytes_);

    uint64_t pos = 0;
    while (pos < size_) {
      off_t data = ::lseek(in.get(), static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole remains
        return Fail({errno, "", "lseek(SEEK_DATA)", src_, ""});
      }
      off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
      if (hole < 0) return Fail({errno, "", "lseek(SEEK_HOLE)", src_, ""});
      uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size_);
      for (uint64_t off = static_cast<uint64_t>(data); off < end;) {
        if (IsCancelled(cancel_)) return Fail({ECANCELED, "ECANCELED", "copySparse", dst_, "cancelled"});
        if (!CheckLease(in.get())) return;
        uint64_t n = std::min<uint64_t>(chunk_, end - off);
        uint64_t moved = 0;
        if (!CopyChunk(in.get(), out.get(), off, n, &moved)) return;
        if (moved == 0) {
          // Nothing moved before the extent's end. Some filesystems say so from copy_file_range
          // before EOF: if the source still reaches past here, read and write the chunk instead.
          struct stat now;
          if (::fstat(in.get(), &now) != 0) return Fail({errno, "", "fstat", src_, ""});
          if (static_cast<uint64_t>(now.st_size) <= off) break;  // it shrank: keep what it had
          if (fallback_) return Fail({EIO, "", "pread", src_, "no data before the end of the file"});
          fallback_ = true;
          continue;
        }
        if (!WriteBehind(in.get(), out.get(), off, moved)) return;
        off += moved;
        done_ += moved;
        SendProgress(progress, done_, std::max(done_, dataBytes_));
      }
      pos = end;
    }
    if (leaseHeld_) ::fcntl(in.get(), F_SETLEASE, F_UNLCK);

    FinishFile(dst_, &out, size_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("size", Napi::Number::New(env, static_cast<double>(size_)));
    r.Set("dataBytes", Napi::Number::New(env, static_cast<double>(dataBytes_)));
    r.Set("bytesCopied", Napi::Number::New(env, static_cast<double>(done_)));
    r.Set("fallbackBytes", Napi::Number::New(env, static_cast<double>(fallbackBytes_)));
    r.Set("leaseHeld", Napi::Boolean::New(env, leaseHeld_));
    return r;
  }

 private:
  bool CountData(int fd) {
    uint64_t pos = 0;
    while (pos < size_) {
      off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;
        Fail({errno, "", "lseek(SEEK_DATA)", src_, ""});
        return false;
      }
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) {
        Fail({errno, "", "lseek(SEEK_HOLE)", src_, ""});
        return false;
      }
      uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size_);
      dataBytes_ += end - static_cast<uint64_t>(data);
      pos = end;
    }
    return true;
  }

  // Keeps a long copy from flooding the page cache (and the VMs' cached data with it): the pages
  // just written are sent to disk at once, and the previous chunk's are waited for and dropped.
  // Dirty data stays near two chunks, so the final fsync is short and the kernel never throttles
  // us for minutes of writeback. The pages read are dropped too when the caller says the source
  // is its own (a staging clone, a snapshot file), never from a volume a VM may be using.
  bool WriteBehind(int in, int out, uint64_t off, uint64_t n) {
    if (dropSourceCache_) ::posix_fadvise(in, static_cast<off_t>(off), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
    if (::sync_file_range(out, static_cast<off_t>(off), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE) != 0) {
      Fail({errno, "", "sync_file_range", dst_, ""});
      return false;
    }
    if (behindLen_ > 0) {
      if (::sync_file_range(out, static_cast<off_t>(behindOff_), static_cast<off_t>(behindLen_),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        Fail({errno, "", "sync_file_range", dst_, ""});
        return false;
      }
      ::posix_fadvise(out, static_cast<off_t>(behindOff_), static_cast<off_t>(behindLen_), POSIX_FADV_DONTNEED);
    }
    behindOff_ = off;
    behindLen_ = n;
    return true;
  }

  // A writer opening the source breaks the lease; it waits in open() until we let go, so let go
  // at once. Returns false (after Fail) when the lease was required.
  bool CheckLease(int fd) {
    if (!leaseHeld_) return true;
    if (::fcntl(fd, F_GETLEASE) == F_RDLCK) return true;
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
    leaseHeld_ = false;
    if (leaseMode_ == kLeaseRequire) {
      Fail({0, "ELEASEBROKEN", "fcntl(F_GETLEASE)", src_, "the file was opened for writing during the copy"});
      return false;
    }
    return true;
  }

  bool CopyChunk(int in, int out, uint64_t off, uint64_t n, uint64_t* moved) {
    while (!fallback_) {
      loff_t offIn = static_cast<loff_t>(off), offOut = static_cast<loff_t>(off);
      ssize_t r = ::copy_file_range(in, &offIn, out, &offOut, n, 0);
      if (r >= 0) {
        *moved = static_cast<uint64_t>(r);
        cfrWorked_ = cfrWorked_ || r > 0;
        return true;
      }
      if (errno == EINTR) continue;
      bool refused = errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS ||
                     (errno == EINVAL && !cfrWorked_);
      if (!refused) {
        Fail({errno, "", "copy_file_range", dst_, ""});
        return false;
      }
      fallback_ = true;
    }
    if (buffer_.empty()) buffer_.resize(kFallbackBuffer);
    uint64_t total = 0;
    while (total < n) {
      // A chunk can be long when writeback throttles us; stop inside it too.
      if (IsCancelled(cancel_)) {
        Fail({ECANCELED, "ECANCELED", "copySparse", dst_, "cancelled"});
        return false;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(n - total, buffer_.size()));
      ssize_t r = ::pread(in, buffer_.data(), want, static_cast<off_t>(off + total));
      if (r < 0) {
        if (errno == EINTR) continue;
        Fail({errno, "", "pread", src_, ""});
        return false;
      }
      if (r == 0) break;
      size_t written = 0;
      while (written < static_cast<size_t>(r)) {
        ssize_t w = ::pwrite(out, buffer_.data() + written, static_cast<size_t>(r) - written,
                             static_cast<off_t>(off + total + written));
        if (w < 0) {
          if (errno == EINTR) continue;
          Fail({errno, "", "pwrite", dst_, ""});
          return false;
        }
        written += static_cast<size_t>(w);
      }
      total += static_cast<uint64_t>(r);
    }
    fallbackBytes_ += total;
    *moved = total;
    return true;
  }

  std::string src_, dst_;
  uint64_t chunk_;
  int leaseMode_;
  bool dropSourceCache_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  uint64_t size_ = 0, dataBytes_ = 0, done_ = 0, fallbackBytes_ = 0;
  uint64_t behindOff_ = 0, behindLen_ = 0;
  bool leaseHeld_ = false, fallback_ = false, cfrWorked_ = false;
  std::vector<char> buffer_;
};

}  // namespace

Napi::Value JS_copySparse(const Napi::CallbackInfo& info) {
  std::string src, dst;
  double chunk = 0, lease = 0;
  if (!ExpectString(info, 0, "src", &src) || !ExpectString(info, 1, "dst", &dst) ||
      !ExpectNumber(info, 2, "chunkBytes", &chunk) || !ExpectNumber(info, 3, "leaseMode", &lease))
    return info.Env().Undefined();
  if (chunk < 4096) {
    Napi::RangeError::New(info.Env(), "Expected chunkBytes of at least 4096").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  bool dropSourceCache = info.Length() > 4 && info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  auto* worker = new CopySparseWorker(info.Env(), src, dst, static_cast<uint64_t>(chunk), static_cast<int>(lease),
                                      dropSourceCache, info.Length() > 5 ? info[5] : info.Env().Undefined(),
                                      CancelFlagFrom(info.Length() > 6 ? info[6] : info.Env().Undefined()));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace volsnap
