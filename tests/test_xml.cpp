// The XML reader and the VOC annotation parser, on annotation files in the shape of real VOC 2012
// files (tests/fixtures/voc/Annotations: a person layout with parts, an alphabetical 2008-style
// file with occluded flags, an action-set file with actions, points and a fractional coordinate,
// and a segmentation-set file with difficult objects, CRLF, a declaration and a comment). The
// expected values are read off the fixture files by hand.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "data/voc.h"
#include "data/xml.h"
#include "tensor/error.h"

namespace {

std::string fixture(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "fixtures/voc/Annotations" / name)
      .string();
}

bool throws_with(const std::string& text, const std::string& needle) {
  try {
    prm::xml::parse(text, "doc.xml");
  } catch (const prm::Error& e) {
    const std::string what = e.what();
    if (what.find(needle) == std::string::npos || what.find("doc.xml") == std::string::npos) {
      MESSAGE("message was: " << what);
      return false;
    }
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("xml: elements, attributes, entities, comments, CDATA") {
  const std::string doc =
      "<?xml version='1.0'?>\r\n<!DOCTYPE a [ <!ENTITY x 'y'> ]>\n<!-- c -->\n"
      "<a k=\"v &amp; w\" j='1'>\n  <b>one &lt;two&gt; &#65;&#x42;</b>\n"
      "  <!-- <b>not an element</b> -->\n  <c/>\n  <b><![CDATA[<raw>&]]></b>\n</a>\n";
  auto root = prm::xml::parse(doc, "doc.xml");
  CHECK(root->name == "a");
  REQUIRE(root->attribute("k"));
  CHECK(*root->attribute("k") == "v & w");
  CHECK(*root->attribute("j") == "1");
  CHECK(root->attribute("z") == nullptr);
  REQUIRE(root->children.size() == 3);
  auto bs = root->children_named("b");
  REQUIRE(bs.size() == 2);
  CHECK(bs[0]->trimmed_text() == "one <two> AB");
  CHECK(bs[1]->text == "<raw>&");
  CHECK(root->child("c") != nullptr);
  CHECK(root->child("c")->line == 7);
}

TEST_CASE("xml: broken documents throw prm::Error with the source and a reason") {
  CHECK(throws_with("<a><b></a>", "closes <b>"));
  CHECK(throws_with("<a><b>", "missing </b>"));
  CHECK(throws_with("<a>x &bogus; y</a>", "unknown entity"));
  CHECK(throws_with("<a k=v/>", "unquoted"));
  CHECK(throws_with("<a></a><b/>", "after the root"));
  CHECK(throws_with("", "expected the root"));
  CHECK(throws_with("<a><!-- open", "unterminated comment"));
  CHECK(throws_with("<a k='1' k='2'/>", "duplicate attribute"));
  CHECK(throws_with("<a>&#0;</a>", "NUL"));
  CHECK(throws_with("<a", "unterminated tag"));
  std::string deep;
  for (int i = 0; i < prm::xml::kMaxDepth + 5; ++i) deep += "<d>";
  CHECK(throws_with(deep, "nested too deeply"));
}

TEST_CASE("voc xml: person layout with parts (2007_000027)") {
  prm::VocAnnotation a =
      prm::read_voc_annotation(fixture("2007_000027.xml"), prm::voc_class_names());
  CHECK(a.filename == "2007_000027.jpg");
  CHECK(a.width == 486);
  CHECK(a.height == 500);
  CHECK(!a.segmented);
  REQUIRE(a.objects.size() == 1);
  const prm::VocObject& p = a.objects[0];
  CHECK(p.name == "person");
  CHECK(p.class_id == 14);
  CHECK(p.box.xmin == 174);
  CHECK(p.box.ymax == 351);
  REQUIRE(p.parts.size() == 4);
  CHECK(p.parts[0].name == "head");
  CHECK(p.parts[3].name == "foot");
  CHECK(p.parts[3].box.xmin == 319);
  CHECK(p.parts[3].box.ymax == 326);
}

TEST_CASE("voc xml: alphabetical 2008 shape with occluded flags (2008_000008)") {
  prm::VocAnnotation a =
      prm::read_voc_annotation(fixture("2008_000008.xml"), prm::voc_class_names());
  CHECK(a.width == 500);
  CHECK(a.height == 442);
  REQUIRE(a.objects.size() == 2);
  CHECK(a.objects[0].name == "horse");
  CHECK(a.objects[0].class_id == 12);
  CHECK(a.objects[0].occluded);
  CHECK(a.objects[0].pose == "Left");
  CHECK(a.objects[0].box.xmin == 53);
  CHECK(a.objects[0].box.xmax == 471);
  CHECK(a.objects[1].truncated);
  CHECK(!a.objects[1].difficult);
}

TEST_CASE("voc xml: action set with actions, points and fractional boxes (2011_003276)") {
  prm::VocAnnotation a =
      prm::read_voc_annotation(fixture("2011_003276.xml"), prm::voc_class_names());
  REQUIRE(a.objects.size() == 2);
  const prm::VocObject& o = a.objects[0];
  CHECK(o.box.xmin == doctest::Approx(196.5));
  REQUIRE(o.actions.size() == 11);
  CHECK(o.actions.back().first == "walking");
  CHECK(o.actions.back().second == 1);
  CHECK(o.has_point);
  CHECK(o.point_x == 252);
  CHECK(o.point_y == 104);
  CHECK(!a.objects[1].has_box);  // a point-only object
  CHECK(a.objects[1].point_x == 400);
}

TEST_CASE("voc xml: CRLF, declaration, difficult objects, stray whitespace (2007_000129)") {
  prm::VocAnnotation a =
      prm::read_voc_annotation(fixture("2007_000129.xml"), prm::voc_class_names());
  CHECK(a.segmented);
  CHECK(a.width == 334);
  REQUIRE(a.objects.size() == 4);
  CHECK(a.objects[1].difficult);
  CHECK(a.objects[1].truncated);
  CHECK(a.objects[2].box.xmin == 1);
  CHECK(a.objects[2].box.ymin == 1);
  CHECK(a.objects[3].difficult);
  CHECK(a.objects[3].box.ymax == 232);
}

TEST_CASE("voc xml: an unknown class or a bad number names the file") {
  auto root = prm::xml::parse(
      "<annotation><object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
      "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
      "u.xml");
  CHECK_THROWS_WITH_AS(prm::parse_voc_annotation(*root, "u.xml", prm::voc_class_names()),
                       doctest::Contains("u.xml:1: unknown class name 'unicorn'"), prm::Error);
  auto bad = prm::xml::parse(
      "<annotation><object><name>cat</name><bndbox><xmin>x</xmin><ymin>1</ymin>"
      "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
      "n.xml");
  CHECK_THROWS_WITH_AS(prm::parse_voc_annotation(*bad, "n.xml", prm::voc_class_names()),
                       doctest::Contains("not a number"), prm::Error);
  // Found by the fuzzer: a size that does not fit an int must be an error, not UB.
  auto huge = prm::xml::parse(
      "<annotation><size><width>3.3e40</width><height>2</height></size></annotation>", "h.xml");
  CHECK_THROWS_WITH_AS(prm::parse_voc_annotation(*huge, "h.xml", prm::voc_class_names()),
                       doctest::Contains("must be an integer"), prm::Error);
  CHECK_THROWS_AS(prm::read_voc_annotation("/nonexistent/a.xml", prm::voc_class_names()),
                  prm::Error);
}

TEST_CASE("voc xml: format_voc_annotation reads back the same objects") {
  prm::VocAnnotation a =
      prm::read_voc_annotation(fixture("2007_000027.xml"), prm::voc_class_names());
  a.objects[0].difficult = true;
  auto root = prm::xml::parse(prm::format_voc_annotation(a), "fmt.xml");
  prm::VocAnnotation b = prm::parse_voc_annotation(*root, "fmt.xml", prm::voc_class_names());
  REQUIRE(b.objects.size() == 1);
  CHECK(b.objects[0].difficult);
  CHECK(b.objects[0].parts.size() == 4);
  CHECK(b.objects[0].box.xmax == 349);
  CHECK(b.width == 486);
}
