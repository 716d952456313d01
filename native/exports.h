// The functions the addon exports to JavaScript (see src/fs/native.ts for their TypeScript face).
#pragma once

#include <napi.h>

namespace volsnap {

// clone(src, dst, sliceBytes, onProgress?, cancellation?) → Promise<{ bytes, slices }>
Napi::Value JS_clone(const Napi::CallbackInfo& info);
// copySparse(src, dst, chunkBytes, leaseMode, dropSourceCache, onProgress?, cancellation?) →
//   Promise<{ size, dataBytes, bytesCopied, fallbackBytes, leaseHeld }>
Napi::Value JS_copySparse(const Napi::CallbackInfo& info);
// extents(path) → Promise<{ size, allocatedBytes, sharedBytes, unwrittenBytes, extentCount }>
Napi::Value JS_extents(const Napi::CallbackInfo& info);
// lockFile(path) → fd: an exclusive flock held until the fd is closed (throws EWOULDBLOCK if held)
Napi::Value JS_lockFile(const Napi::CallbackInfo& info);
// sendNotify(socketPath, message) → undefined (one datagram to a systemd notify socket)
Napi::Value JS_sendNotify(const Napi::CallbackInfo& info);

}  // namespace volsnap
