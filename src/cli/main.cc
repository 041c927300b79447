// gimel: a self-hostable A/B-testing backend. `gimel --help` lists the subcommands.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using gimel::cli::CommonFlags;
  CLI::App app{
      "gimel: a self-hostable A/B-testing backend (alephbet/Gimel compatible).\n"
      "Configuration: --config FILE, else ./config.json, else ~/.gimel/config.json; "
      "GIMEL_* environment variables override the file, flags override both."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gimel 0.1.0");

  CommonFlags flags;
  auto add_config = [&flags](CLI::App* cmd) {
    cmd->add_option("-c,--config", flags.config_path, "configuration file (JSON)");
  };
  auto add_store = [&flags](CLI::App* cmd) {
    cmd->add_option("--listen", flags.listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
    cmd->add_option("--data-dir", flags.data_dir,
                    "embedded store directory (default ~/.gimel/data)");
    cmd->add_option("--store", flags.store, "embedded | redis | redis-cluster");
  };

  auto* serve = app.add_subcommand(
      "serve", "run the HTTP server (the tracking endpoint, reports, dashboard)");
  add_config(serve);
  add_store(serve);

  std::vector<std::string> sets;
  bool no_edit = false;
  auto* configure = app.add_subcommand(
      "configure", "create the config file from a template (mode 0600) and open $EDITOR");
  add_config(configure);
  configure->add_option("--set", sets,
                        "KEY=VALUE to set without an editor (repeatable), e.g. redis.port=6380");
  configure->add_flag("--no-edit", no_edit, "do not open $EDITOR");

  auto* preflight =
      app.add_subcommand("preflight", "check the configuration, the store and the listen address");
  add_config(preflight);
  add_store(preflight);

  std::string ns;
  auto* snippet =
      app.add_subcommand("snippet", "print the alephbet <script> snippet for this server");
  add_config(snippet);
  snippet->add_option("--namespace", ns, "namespace (default from config: alephbet)");

  bool no_open = false;
  auto* dashboard = app.add_subcommand("dashboard", "open (or print) the dashboard URL");
  add_config(dashboard);
  dashboard->add_flag("--print", no_open, "only print the URL");

  std::string input;
  auto* analyze = app.add_subcommand(
      "analyze", "statistics for counts given as JSON (file or stdin), no store needed");
  analyze->add_option("input", input, "JSON file ('-' or absent: stdin)");

  std::string from, to;
  auto* migrate =
      app.add_subcommand("migrate", "copy every namespace, experiment and counter between stores");
  add_config(migrate);
  migrate
      ->add_option("--from", from,
                   "source: embedded:DIR | redis://[:PASSWORD@]HOST:PORT[/DB] | "
                   "redis-cluster://HOST:PORT[,HOST:PORT...] | embedded | redis | redis-cluster")
      ->required();
  migrate->add_option("--to", to, "destination, same forms as --from")->required();

  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) return gimel::cli::Serve(flags);
  if (configure->parsed()) return gimel::cli::Configure(flags, sets, no_edit);
  if (preflight->parsed()) return gimel::cli::Preflight(flags);
  if (snippet->parsed()) return gimel::cli::PrintSnippet(flags, ns);
  if (dashboard->parsed()) return gimel::cli::Dashboard(flags, no_open);
  if (analyze->parsed()) return gimel::cli::Analyze(input);
  if (migrate->parsed()) return gimel::cli::Migrate(flags, from, to);
  return 2;
}
