// The dashboard's static files (web/*.html, *.js, *.css), compiled into the binary at build
// time by web/embed_assets.cmake, so `gimel serve` needs no files on disk to serve /dashboard.
#pragma once

#include <string_view>

namespace gimel::web {

struct Asset {
  std::string_view path;          // relative to the dashboard root, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;          // the file's bytes
};

// path relative to the dashboard root: "index.html", "app.js", "style.css".
// nullptr if unknown (no directory traversal: only the exact embedded names match).
const Asset* FindAsset(std::string_view path);

}  // namespace gimel::web
