{
  "targets": [
    {
      "target_name": "rpctls_native",
      "sources": [
        "src/addon.cc",
        "src/buffer_pool.cc",
        "src/ktls.cc",
        "src/netlink.cc",
        "src/keys.cc",
        "src/tls_context.cc",
        "src/tls_socket.cc",
        "src/records_kernel.cc",
        "src/records_openssl.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": [],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/ktls.cc", "src/netlink.cc", "src/keys.cc", "src/records_kernel.cc"] }]
      ]
    }
  ]
}
