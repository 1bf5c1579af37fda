#include "commands.hpp"

namespace ipcx::cli {

void add_send(CLI::App& app) { app.add_subcommand("send", "not built yet"); }

}  // namespace ipcx::cli
