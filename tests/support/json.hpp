// Just enough JSON for reading `ipcx bench --json` in tests: arrays, objects, strings, numbers,
// null, booleans.
#pragma once

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace ipcx::test {

struct json {
  enum class type { null, boolean, number, string, array, object } kind = type::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<json> array;
  std::map<std::string, json> object;

  bool has(const std::string& key) const { return object.count(key) != 0; }
  const json& at(const std::string& key) const { return object.at(key); }
};

class json_parser {
 public:
  explicit json_parser(std::string text) : text_(std::move(text)) {}

  std::optional<json> parse() {
    auto v = value();
    skip_space();
    if (!v || pos_ != text_.size()) return std::nullopt;
    return v;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool word(const char* w) {
    std::string_view s(w);
    if (text_.compare(pos_, s.size(), s) != 0) return false;
    pos_ += s.size();
    return true;
  }
  std::optional<std::string> string_value() {
    if (!eat('"')) return std::nullopt;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\' && pos_ < text_.size()) {
        char e = text_[pos_++];
        if (e == 'n') {
          out += '\n';
        } else if (e == 't') {
          out += '\t';
        } else if (e == 'u') {
          pos_ += 4;  // no \u escapes matter to these tests
          out += '?';
        } else {
          out += e;
        }
      } else {
        out += c;
      }
    }
    if (pos_ >= text_.size()) return std::nullopt;
    ++pos_;
    return out;
  }
  std::optional<json> value() {
    skip_space();
    if (pos_ >= text_.size()) return std::nullopt;
    json v;
    char c = text_[pos_];
    if (c == '[') {
      ++pos_;
      v.kind = json::type::array;
      if (eat(']')) return v;
      do {
        auto item = value();
        if (!item) return std::nullopt;
        v.array.push_back(std::move(*item));
      } while (eat(','));
      if (!eat(']')) return std::nullopt;
    } else if (c == '{') {
      ++pos_;
      v.kind = json::type::object;
      if (eat('}')) return v;
      do {
        auto key = string_value();
        if (!key || !eat(':')) return std::nullopt;
        auto item = value();
        if (!item) return std::nullopt;
        v.object.emplace(std::move(*key), std::move(*item));
      } while (eat(','));
      if (!eat('}')) return std::nullopt;
    } else if (c == '"') {
      auto s = string_value();
      if (!s) return std::nullopt;
      v.kind = json::type::string;
      v.string = std::move(*s);
    } else if (word("null")) {
      v.kind = json::type::null;
    } else if (word("true") || word("false")) {
      v.kind = json::type::boolean;
      v.boolean = text_[pos_ - 1] == 'e' && text_[pos_ - 2] == 'u';
    } else {
      const char* start = text_.c_str() + pos_;
      char* end = nullptr;
      v.number = std::strtod(start, &end);
      if (end == start) return std::nullopt;
      v.kind = json::type::number;
      pos_ += static_cast<std::size_t>(end - start);
    }
    return v;
  }

  std::string text_;
  std::size_t pos_ = 0;
};

inline std::optional<json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return json_parser(text.str()).parse();
}

}  // namespace ipcx::test
