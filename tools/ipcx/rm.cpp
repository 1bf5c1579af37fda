// ipcx rm ADDRESS: removes a named object (queue, FIFO, socket file, log).
#include <memory>
#include <string>

#include "commands.hpp"
#include "ipcx/channel.hpp"

namespace ipcx::cli {
namespace {

int run_rm(const std::string& text) {
  auto where = address::parse(text);
  if (!where) return report(where.error());
  // Mechanisms with nothing named (pipe, signal, tcp, udp, unix:@name) succeed in the library.
  auto removed = channel::remove(*where);
  if (!removed) return report(removed.error());
  return exit_ok;
}

}  // namespace

void add_rm(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "rm",
      "remove the named object behind ADDRESS (a queue, FIFO, socket file or log); "
      "addresses with nothing named (pipe, signal, tcp, udp, unix:@name) succeed");
  auto address_text = std::make_shared<std::string>();
  sub->add_option("ADDRESS", *address_text, "the channel's address")->required();
  sub->callback([address_text] { finish(run_rm(*address_text)); });
}

}  // namespace ipcx::cli
