#include "commands.hpp"

namespace ipcx::cli {

void add_recv(CLI::App& app) { app.add_subcommand("recv", "not built yet"); }

}  // namespace ipcx::cli
