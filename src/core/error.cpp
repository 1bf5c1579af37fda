#include "ipcx/error.hpp"

#include <cctype>

namespace ipcx {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ipcx"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::bad_address: return "malformed address";
      case errc::message_too_large: return "message too large";
      case errc::timed_out: return "timed out";
      case errc::end_of_stream: return "end of stream (peer closed)";
      case errc::peer_dead: return "peer process died";
      case errc::corrupt_segment: return "corrupt shared-memory segment";
      case errc::corrupt_record: return "corrupt record";
      case errc::bad_frame: return "bad frame header";
      case errc::not_supported: return "not supported by this mechanism";
      case errc::no_peer: return "no peer to send to yet";
    }
    return "unknown ipcx error";
  }
};

}  // namespace

const std::error_category& ipcx_category() noexcept {
  static const category instance;
  return instance;
}

std::string error::message() const {
  std::string out = operation_;
  if (object_) {
    out += "(\"";
    out += *object_;
    out += "\")";
  }
  // strerror capitalises ("Permission denied"); the one-line form reads better in lower case.
  std::string cause = code_.message();
  if (!cause.empty() && code_.category() == std::generic_category())
    cause[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(cause[0])));
  out += ": ";
  out += cause;
  if (!detail_.empty()) {
    out += ": ";
    out += detail_;
  }
  return out;
}

}  // namespace ipcx
