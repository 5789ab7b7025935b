// JSON reader and writer (data/json.h): values by hand against RFC 8259's grammar, round trips
// of doubles, escapes and \u escapes (surrogate pairs as UTF-8 bytes worked out by hand),
// malformed input with the byte offset named, and the nesting limit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "data/json.h"
#include "helpers.h"

using namespace prm;

namespace {

bool contains_text(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string error_of(const std::string& text, int max_depth = kJsonDefaultMaxDepth) {
  try {
    parse_json(text, "doc.json", max_depth);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("json: parses every kind of value") {
  const Json v = parse_json(
      " {\"n\": null, \"t\": true, \"f\": false, \"i\": -12, \"x\": 2.5e-3, \"s\": \"hi\",\n"
      "  \"a\": [1, [], {}], \"o\": {\"k\": \"v\"}} \r\n\t",
      "doc");
  REQUIRE(v.is_object());
  REQUIRE(v.size() == 8);
  CHECK(v.fields()[0].first == "n");  // file order kept
  CHECK(v.fields()[7].first == "o");
  CHECK(v.at("n").is_null());
  CHECK(v.at("t").as_bool() == true);
  CHECK(v.at("f").as_bool() == false);
  CHECK(v.at("i").as_int64() == -12);
  CHECK(v.at("i").as_double() == -12.0);
  CHECK(v.at("x").as_double() == 0.0025);
  CHECK(v.at("x").number_text() == "2.5e-3");
  CHECK(v.at("s").as_string() == "hi");
  REQUIRE(v.at("a").size() == 3);
  CHECK(v.at("a").items()[1].is_array());
  CHECK(v.at("a").items()[2].is_object());
  CHECK(v.at("o").at("k").as_string() == "v");
  CHECK(v.find("missing") == nullptr);
  CHECK_THROWS_WITH_AS(v.at("missing"), doctest::Contains("no field \"missing\""), Error);
  CHECK_THROWS_WITH_AS(v.at("s").as_double(), "JSON: expected a number, found a string", Error);
  CHECK_THROWS_WITH_AS(v.at("x").as_int64(), doctest::Contains("the number 2.5e-3"), Error);
  // Scalars at the top level are documents too.
  CHECK(parse_json("3", "d").as_int64() == 3);
  CHECK(parse_json("\"\"", "d").as_string().empty());
  CHECK(parse_json("null", "d").is_null());
}

TEST_CASE("json: integers stay exact beyond double precision") {
  uint64_t u = 0;
  int64_t i = 0;
  const Json big = parse_json("18446744073709551615", "d");  // 2^64 - 1
  CHECK(big.get_uint64(u));
  CHECK(u == std::numeric_limits<uint64_t>::max());
  CHECK_FALSE(big.get_int64(i));
  CHECK_FALSE(parse_json("18446744073709551616", "d").get_uint64(u));  // 2^64
  CHECK(parse_json("-9223372036854775808", "d").get_int64(i));
  CHECK(i == std::numeric_limits<int64_t>::min());
  CHECK_FALSE(parse_json("-1", "d").get_uint64(u));
  CHECK_FALSE(parse_json("1.0", "d").get_uint64(u));
  CHECK_FALSE(parse_json("1e2", "d").get_int64(i));
  // 2^53 + 1 is not a double; written from an integer it survives a round trip.
  const int64_t odd = (int64_t{1} << 53) + 1;
  CHECK(write_json(Json(odd)) == "9007199254740993");
  CHECK(parse_json(write_json(Json(odd)), "d").as_int64() == odd);
  CHECK(Json(odd) != Json(odd - 1));  // compared as integers, not as doubles
  CHECK(write_json(Json(std::numeric_limits<uint64_t>::max())) == "18446744073709551615");
}

TEST_CASE("json: doubles round-trip exactly, in the shortest form") {
  CHECK(write_json(Json(0.1)) == "0.1");
  CHECK(write_json(Json(1.0)) == "1");
  CHECK(write_json(Json(-0.0)) == "-0");
  CHECK(write_json(Json(1e300)) == "1e+300");
  CHECK(write_json(Json(0.25f)) == "0.25");
  const double specials[] = {0.1 + 0.2,
                             1.0 / 3.0,
                             -2.5e-300,
                             std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::min(),
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::epsilon(),
                             123456789.125};
  for (double x : specials) {
    const double back = parse_json(write_json(Json(x)), "d").as_double();
    CHECK_MESSAGE(back == x, write_json(Json(x)));
  }
  std::mt19937_64 rng(7);
  int exact = 0;
  for (int k = 0; k < 2000; ++k) {  // random bit patterns: every exponent, every mantissa
    const uint64_t bits = rng();
    double x;
    std::memcpy(&x, &bits, 8);
    if (!std::isfinite(x)) continue;
    const double back = parse_json(write_json(Json::array({x})), "d").items()[0].as_double();
    exact += std::memcmp(&back, &x, 8) == 0;
    if (std::memcmp(&back, &x, 8) != 0) FAIL_CHECK(write_json(Json(x)));
  }
  CHECK(exact > 1900);
  // -0 keeps its sign through the text.
  CHECK(std::signbit(parse_json("-0", "d").as_double()));
  // JSON has no NaN or infinity.
  CHECK_THROWS_AS(Json(std::nan("")), Error);
  CHECK_THROWS_AS(Json(std::numeric_limits<double>::infinity()), Error);
  CHECK(write_json(Json::fixed(1.0, 6)) == "1.000000");
  CHECK(write_json(Json::fixed(2.0 / 3.0, 3)) == "0.667");
  CHECK(Json::fixed(2.0 / 3.0, 3).as_double() == 0.667);
}

TEST_CASE("json: string escapes, read and written") {
  // Every two-character escape.
  CHECK(parse_json(R"("\" \\ \/ \b \f \n \r \t")", "d").as_string() == "\" \\ / \b \f \n \r \t");
  // Writing escapes quote and backslash, and the control characters as \u00XX.
  CHECK(json_quote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_quote(std::string("\n\t\x01\x1f", 4)) == R"("\u000a\u0009\u0001\u001f")");
  CHECK(json_quote(std::string("nul\0x", 5)) == R"("nul\u0000x")");
  CHECK(json_quote("caf\xc3\xa9 /") == "\"caf\xc3\xa9 /\"");  // UTF-8 and '/' pass through
  // Every byte 0..255 survives write + parse.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  CHECK(parse_json(json_quote(all), "d").as_string() == all);
  // Names are escaped too.
  Json o = Json::object();
  o.set("k\"\n", 1);
  CHECK(write_json(o) == R"({"k\"\u000a":1})");
  CHECK(parse_json(write_json(o), "d") == o);
}

TEST_CASE("json: \\u escapes become UTF-8, surrogate pairs joined") {
  // U+0041 'A' (1 byte), U+00E9 e-acute (2), U+20AC euro (3), U+FFFF (3), all by hand from
  // UTF-8's bit layout: 110xxxxx 10xxxxxx, 1110xxxx 10xxxxxx 10xxxxxx.
  CHECK(parse_json(R"("\u0041")", "d").as_string() == "A");
  CHECK(parse_json(R"("\u00e9\u00E9")", "d").as_string() == "\xc3\xa9\xc3\xa9");
  CHECK(parse_json(R"("\u20ac")", "d").as_string() == "\xe2\x82\xac");
  CHECK(parse_json(R"("\uffff")", "d").as_string() == "\xef\xbf\xbf");
  CHECK(parse_json(R"("\u0000")", "d").as_string() == std::string(1, '\0'));
  // U+1F600: D83D DE00 -> 0x10000 + (0x3D << 10) + 0x200 = 0x1F600 -> F0 9F 98 80.
  CHECK(parse_json(R"("\ud83d\ude00")", "d").as_string() == "\xf0\x9f\x98\x80");
  // U+10000 (D800 DC00) and U+10FFFF (DBFF DFFF), the ends of the supplementary planes.
  CHECK(parse_json(R"("\uD800\uDC00")", "d").as_string() == "\xf0\x90\x80\x80");
  CHECK(parse_json(R"("\udbff\udfff")", "d").as_string() == "\xf4\x8f\xbf\xbf");
  // Broken surrogates and escapes are errors naming where they start.
  CHECK(error_of(R"(["\ude00"])") ==
        "doc.json: corrupt JSON (lone low surrogate in a \\u escape at byte 2)");
  CHECK(contains_text(error_of(R"("\ud83d")"), "high surrogate not followed"));
  CHECK(contains_text(error_of(R"("\ud83dx")"), "high surrogate not followed"));
  CHECK(contains_text(error_of(R"("\ud83d\u0041")"), "high surrogate not followed"));
  CHECK(contains_text(error_of(R"("\u12g4")"), "bad \\u escape"));
  CHECK(contains_text(error_of(R"("\u12")"), "truncated \\u escape"));
  CHECK(error_of(R"("ab\q")") == "doc.json: corrupt JSON (bad escape '\\q' in a string at byte 3)");
}

TEST_CASE("json: malformed documents name the source and the byte offset") {
  CHECK(error_of("") ==
        "doc.json: corrupt JSON (expected a value, found the end of the text at "
        "byte 0)");
  CHECK(error_of("{\"a\" 1}") == "doc.json: corrupt JSON (expected ':' at byte 5)");
  CHECK(error_of("[1, 2") == "doc.json: corrupt JSON (expected ']' at byte 5)");
  CHECK(error_of("[1 2]") == "doc.json: corrupt JSON (expected ']' at byte 3)");
  CHECK(error_of("{\"a\":1,}") == "doc.json: corrupt JSON (expected a string at byte 7)");
  CHECK(error_of("[1,]") == "doc.json: corrupt JSON (expected a value at byte 3)");
  CHECK(error_of("{a:1}") == "doc.json: corrupt JSON (expected a string at byte 1)");
  CHECK(error_of("{} x") ==
        "doc.json: corrupt JSON (unexpected text after the JSON value at "
        "byte 3)");
  CHECK(error_of("{\"k\":1,\"k\":2}") == "doc.json: corrupt JSON (duplicate name \"k\" at byte 7)");
  CHECK(error_of("\"abc") == "doc.json: corrupt JSON (unterminated string at byte 4)");
  CHECK(error_of("\"a\nb\"") == "doc.json: corrupt JSON (control character in a string at byte 2)");
  CHECK(contains_text(error_of("tru"), "expected a value at byte 0"));
  CHECK(contains_text(error_of("nulls"), "unexpected text after the JSON value at byte 4"));
  CHECK(contains_text(error_of("NaN"), "expected a value"));
  CHECK(contains_text(error_of("'a'"), "expected a value"));
  // Numbers follow the grammar exactly.
  CHECK(error_of("01") == "doc.json: corrupt JSON (a number with a leading zero at byte 1)");
  CHECK(contains_text(error_of("-"), "expected a digit at byte 1"));
  CHECK(contains_text(error_of("+1"), "expected a value at byte 0"));
  CHECK(contains_text(error_of("1."), "expected a digit after the decimal point at byte 2"));
  CHECK(contains_text(error_of(".5"), "expected a value"));
  CHECK(contains_text(error_of("1e"), "expected a digit in the exponent at byte 2"));
  CHECK(contains_text(error_of("1e+"), "expected a digit in the exponent"));
  CHECK(contains_text(error_of("-Infinity"), "expected a digit"));
  CHECK(contains_text(error_of("[1e999]"), "number 1e999 out of range at byte 1"));
  CHECK(error_of("[0, -0, 1.5E+2, -3e-1, 10]") == "no error");
}

TEST_CASE("json: nesting deeper than the limit is an error, not a stack overflow") {
  auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  CHECK(error_of(nested(64)) == "no error");
  CHECK(error_of(nested(65)) ==
        "doc.json: corrupt JSON (nested too deeply (more than 64 levels) at byte 64)");
  CHECK(error_of(nested(3), 3) == "no error");
  CHECK(contains_text(error_of(nested(4), 3), "nested too deeply"));
  CHECK(contains_text(error_of("{\"a\":{\"b\":[{}]}}", 3), "at byte 11"));
  // A hostile file: a million brackets fail fast and cleanly.
  CHECK(contains_text(error_of(std::string(1000000, '[')), "nested too deeply"));
}

TEST_CASE("json: writer layouts and building values") {
  Json v = Json::object({{"name", "x"}, {"n", 3}, {"list", Json::array({1, 2.5, true, nullptr})}});
  v.set("obj", Json::object({{"a", Json::array()}, {"b", Json::object()}}));
  v.set("n", 4);  // replaces in place, keeps the order
  CHECK(write_json(v) == R"({"name":"x","n":4,"list":[1,2.5,true,null],"obj":{"a":[],"b":{}}})");
  CHECK(write_json_readable(v) ==
        R"({"name": "x", "n": 4, "list": [1, 2.5, true, null], "obj": {"a": [], "b": {}}})");
  // Level 1 expanded (it holds containers); "list" holds only scalars, so stays on one line;
  // "obj" is level 2, beyond the limit.
  CHECK(write_json_readable(v, 1) ==
        "{\n"
        "  \"name\": \"x\",\n"
        "  \"n\": 4,\n"
        "  \"list\": [1, 2.5, true, null],\n"
        "  \"obj\": {\"a\": [], \"b\": {}}\n"
        "}");
  CHECK(write_json_readable(v, 2) ==
        "{\n"
        "  \"name\": \"x\",\n"
        "  \"n\": 4,\n"
        "  \"list\": [1, 2.5, true, null],\n"
        "  \"obj\": {\n"
        "    \"a\": [],\n"
        "    \"b\": {}\n"
        "  }\n"
        "}");
  CHECK(write_json_readable(Json::array({Json::array({1})}), 5) == "[\n  [1]\n]");
  // Every layout parses back to the same value.
  for (int levels : {0, 1, 2, 9}) CHECK(parse_json(write_json_readable(v, levels), "d") == v);
  CHECK(parse_json(write_json(v), "d") == v);
  // Equality: objects by name (order free), numbers by value.
  CHECK(parse_json(R"({"a":1,"b":2})", "d") == parse_json(R"({"b":2.0,"a":1e0})", "d"));
  CHECK(parse_json(R"({"a":1})", "d") != parse_json(R"({"a":1,"b":2})", "d"));
  CHECK(parse_json("[1,2]", "d") != parse_json("[2,1]", "d"));
  CHECK_THROWS_WITH_AS(Json::object({{"a", 1}, {"a", 2}}), doctest::Contains("repeated name"),
                       Error);
  CHECK_THROWS_AS(Json(3).push_back(1), Error);
  CHECK_THROWS_AS(Json::array().set("a", 1), Error);
}
