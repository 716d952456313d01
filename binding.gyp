{
  "targets": [
    {
      "target_name": "volsnap_native",
      "sources": [
        "native/addon.cc",
        "native/clone.cc",
        "native/copy_sparse.cc",
        "native/extents.cc",
        "native/lock.cc",
        "native/notify.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE", "_FILE_OFFSET_BITS=64"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
