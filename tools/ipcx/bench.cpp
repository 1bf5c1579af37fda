#include "bench.hpp"
#include "commands.hpp"

namespace ipcx::cli {

void add_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "round-trip latency of every mechanism, ipcx vs raw calls");
  auto opts = std::make_shared<bench::options>();
  sub->add_flag("--quick", opts->quick, "a short run (under 30 s)");
  sub->add_option("--json", opts->json_path, "write every figure to this JSON file");
  sub->callback([opts] {
    int rc = bench::run(*opts);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace ipcx::cli
