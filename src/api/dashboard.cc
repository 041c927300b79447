// GET /dashboard[/file]: the dashboard's assets, compiled into the binary (web/).
#include "api/api.h"

#ifdef GIMEL_HAVE_WEB
#include "web/assets.h"
#endif

namespace gimel::api {

Response Api::Dashboard(const Request& req) {
#ifdef GIMEL_HAVE_WEB
  if (req.path == "/dashboard/") {
    // The page loads its assets relative to "/dashboard"; a relative Location keeps any
    // path prefix a proxy adds.
    Response r = ErrorResponse(301, "moved to ../dashboard");
    r.set_header("Location", "../dashboard");
    return r;
  }
  std::string_view path = req.path;
  constexpr std::string_view kRoot = "/dashboard";
  path.remove_prefix(std::min(path.size(), kRoot.size()));
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) path = "index.html";
  const web::Asset* asset = web::FindAsset(path);
  if (!asset) return ErrorResponse(404, "no such dashboard file");
  Response r;
  r.headers.push_back({"Content-Type", std::string(asset->content_type)});
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"});
  r.body.assign(asset->body);
  return r;
#else
  (void)req;
  return ErrorResponse(404, "this binary was built without the dashboard");
#endif
}

}  // namespace gimel::api
