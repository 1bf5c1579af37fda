#include "commands.hpp"

namespace ipcx::cli {

void add_rm(CLI::App& app) { app.add_subcommand("rm", "not built yet"); }

}  // namespace ipcx::cli
