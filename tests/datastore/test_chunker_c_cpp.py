"""C and C++: chunks and symbols from c.scm / cpp.scm, and a repository index of both."""
import pytest

from datastore.chunker import parse_source
from datastore.languages import registry
from datastore.repo_index import RepoIndex

C = r'''#include <stdio.h>
#include "list.h"

#define MAX_ITEMS 16
#define SQUARE(x) ((x) * (x))

typedef struct node {
    int value;
    struct node *next;
} node_t;

typedef enum { MODE_FAST, MODE_SAFE } mode_t;

union number { int i; float f; };

static int counter = 0;

static node_t *node_new(int value) {
    node_t *n = malloc(sizeof *n);
    n->value = value;
    return n;
}

int list_sum(const node_t *head) {
    int total = 0;
    for (; head; head = head->next)
        total += SQUARE(head->value);
    return total;
}

int main(void) {
    node_t *n = node_new(MAX_ITEMS);
    printf("%d\n", list_sum(n));
    return 0;
}
'''

HEADER = '''#ifndef LIST_H
#define LIST_H
typedef struct { int len; } list_t;
extern int verbose;
int list_sum(const list_t *list);
char **list_names(const list_t *list);
#endif
'''

CPP = '''#include <memory>
#include <vector>

namespace geo {

class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;
};

template <typename T>
struct Box : public Shape {
    T width, height;
    Box(T w, T h) : width(w), height(h) {}
    double area() const override { return width * height; }
    bool operator==(const Box &other) const;
};

enum class Unit { Metre, Inch };

double total_area(const std::vector<std::unique_ptr<Shape>> &shapes);

}  // namespace geo

double geo::total_area(const std::vector<std::unique_ptr<Shape>> &shapes) {
    double sum = 0;
    for (const auto &s : shapes)
        sum += s->area();
    return sum;
}

int main() {
    std::vector<std::unique_ptr<geo::Shape>> shapes;
    shapes.push_back(std::make_unique<geo::Box<int>>(2, 3));
    auto *b = new geo::Box<double>(1.0, 2.0);
    return geo::total_area(shapes) > b->area();
}
'''

CASES = {
    "c": ("c", C, [
        ("block", "", 1, 4), ("macro", "SQUARE", 5, 5), ("class", "node", 7, 10), ("enum", "mode_t", 12, 12),
        ("class", "number", 14, 14), ("block", "", 16, 16), ("function", "node_new", 18, 22),
        ("function", "list_sum", 24, 29), ("function", "main", 31, 35)],
        {("MAX_ITEMS", "constant"), ("SQUARE", "macro"), ("node", "class"), ("node_t", "type"),
         ("mode_t", "enum"), ("MODE_FAST", "constant"), ("MODE_SAFE", "constant"), ("number", "class"),
         ("counter", "variable"), ("node_new", "function"), ("list_sum", "function"), ("main", "function")},
        {("node", "type"), ("node_t", "type"), ("malloc", "call"), ("SQUARE", "call"), ("node_new", "call"),
         ("printf", "call"), ("list_sum", "call")}),
    "c-header": ("cpp", HEADER, [("class", "list_t", 3, 3)],      # .h is parsed as C++
        {("LIST_H", "constant"), ("list_t", "class"), ("verbose", "variable"), ("list_sum", "function"),
         ("list_names", "function")},
        {("list_t", "type")}),
    "cpp": ("cpp", CPP, [
        ("block", "", 1, 2), ("module", "geo", 4, 24), ("class", "Shape", 6, 10), ("method", "~Shape", 8, 8),
        ("class", "Box", 12, 18), ("method", "Box", 15, 15), ("method", "area", 16, 16), ("enum", "Unit", 20, 20),
        ("block", "", 24, 24), ("method", "total_area", 26, 31), ("function", "main", 33, 38)],
        {("geo", "module"), ("Shape", "class"), ("~Shape", "method"), ("area", "method"), ("Box", "class"),
         ("Box", "method"), ("operator==", "method"), ("Unit", "enum"), ("Metre", "constant"),
         ("Inch", "constant"), ("total_area", "function"), ("total_area", "method"), ("main", "function")},
        {("Shape", "class"), ("Shape", "type"), ("T", "type"), ("Box", "type"), ("Box", "class"),
         ("vector", "type"), ("unique_ptr", "type"), ("area", "call"), ("push_back", "call"),
         ("make_unique", "call"), ("total_area", "call")}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_chunks_and_symbols(case):
    language, source, chunks, defs, refs = CASES[case]
    parsed = parse_source(source.encode(), language)
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in parsed.chunks] == chunks
    assert {(s.name, s.kind) for s in parsed.symbols if s.role == "def"} == defs
    assert {(s.name, s.kind) for s in parsed.symbols if s.role == "ref"} == refs


def chunk_text(source: str, language: str, kind: str, name: str) -> str:
    chunk = next(c for c in parse_source(source.encode(), language).chunks if (c.kind, c.name) == (kind, name))
    return source.encode()[chunk.start_byte:chunk.end_byte].decode()


def test_chunk_ranges_include_typedef_and_template():
    node = chunk_text(C, "c", "class", "node")
    assert node.startswith("typedef struct node {") and node.endswith("} node_t;")
    assert chunk_text(CPP, "cpp", "class", "Box").startswith("template <typename T>\nstruct Box : public Shape {")
    assert chunk_text(CPP, "cpp", "method", "Box") == "Box(T w, T h) : width(w), height(h) {}"


def test_c_and_cpp_extensions():
    reg = registry()
    assert [reg.language_for(p) for p in ("a.c", "a.h", "a.cc", "a.cpp", "a.cxx", "a.hpp", "a.hh", "a.hxx")] == [
        "c", "cpp", "cpp", "cpp", "cpp", "cpp", "cpp", "cpp"]


def test_repo_index_finds_c_and_cpp_definitions(make_tree, tokenizer):
    repo = make_tree({"src/list.c": C, "include/list.h": HEADER, "geo/shapes.cpp": CPP})
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert [index.file_record(p).language for p in ("src/list.c", "include/list.h", "geo/shapes.cpp")] == [
        "c", "cpp", "cpp"]
    assert sorted(index.definitions("list_sum")) == [("include/list.h", "function", 5), ("src/list.c", "function", 24)]
    assert index.definitions("total_area") == [("geo/shapes.cpp", "function", 22), ("geo/shapes.cpp", "method", 26)]
    hits = index.chunks_for("int n = list_sum(head) + node_new(1)->value;", k=2)
    assert {(h.path, h.name) for h in hits} == {("src/list.c", "list_sum"), ("src/list.c", "node_new")}
