"""Chunks and symbols per language, from the query files alone."""
import pytest

from datastore.chunker import parse_source
from datastore.languages import registry

PYTHON = '''import os
from a import b as c, d

X = 1

@dec
class A(Base):
    """doc"""
    y = 2

    @property
    def m(self):
        return helper(self.y)

    def n(self):
        pass

def f(a):
    def inner():
        return os.path.join(a)
    return inner

if __name__ == "__main__":
    f(1)
'''

JAVASCRIPT = '''const path = require('path');
class Router extends Base {
  constructor() { super(); }
  route(p) { return new Route(p); }
}
function handle(req) { return req.get('x'); }
const mw = (req, res) => { next(); };
app.listen = function listen() { return http.createServer(this); };
module.exports = { create: function () {} };
export function exported() {}
'''

TYPESCRIPT = '''import { A } from './a';
export interface Shape { area(): number; }
type Id = string;
enum Color { Red, Green }
export class Circle extends Base implements Shape {
  constructor(private r: number) { super(); }
  area(): number { return Math.PI * this.r * this.r; }
}
function make(r: number): Circle { return new Circle(r); }
namespace NS { export const z = 1; }
'''

TSX = '''export function App(props: Props) { return <div onClick={() => go()}>{props.x}</div>; }
const Btn = () => <button/>;
'''

GO = '''package main

import "fmt"

type Point struct { X int }
type Shape interface { Area() float64 }
type ID string

const Pi = 3.14

func (p *Point) Move(dx int) { p.X += dx }

func main() {
\tp := Point{1}
\tp.Move(2)
\tfmt.Println(p)
}
'''

RUST = '''use std::fmt;
struct Point { x: i32 }
enum Dir { Up, Down }
trait Shape { fn area(&self) -> f64; fn name(&self) -> String { String::new() } }
impl Point { fn new(x: i32) -> Self { Point { x } } }
impl fmt::Display for Point { fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result { write!(f, "{}", self.x) } }
fn main() { let p = Point::new(1); println!("{}", p); helper(); }
mod inner { pub fn g() {} }
macro_rules! sq { ($x:expr) => { $x * $x }; }
'''

JAVA = '''package a.b;
import java.util.List;
public class Foo extends Bar implements Baz {
    private int count;
    public Foo() { super(); }
    public int get() { return helper(count); }
    interface Inner { void run(); }
    enum E { A, B }
}
'''

CASES = {
    "python": (PYTHON, [
        ("block", "", 1, 4), ("class", "A", 6, 16), ("method", "m", 11, 13), ("method", "n", 15, 16),
        ("function", "f", 18, 21), ("function", "inner", 19, 20), ("block", "", 23, 24)],
        {("X", "constant"), ("A", "class"), ("m", "method"), ("n", "method"), ("f", "function"),
         ("inner", "function")},
        {("b", "import"), ("d", "import"), ("Base", "class"), ("helper", "call"), ("join", "call"),
         ("f", "call")}),
    "javascript": (JAVASCRIPT, [
        ("block", "", 1, 1), ("class", "Router", 2, 5), ("method", "constructor", 3, 3),
        ("method", "route", 4, 4), ("function", "handle", 6, 6), ("function", "mw", 7, 7),
        ("function", "listen", 8, 8), ("function", "create", 9, 9), ("function", "exported", 10, 10)],
        {("path", "constant"), ("Router", "class"), ("constructor", "method"), ("route", "method"),
         ("handle", "function"), ("mw", "function"), ("listen", "function"), ("create", "function"),
         ("exported", "function")},
        {("require", "call"), ("Base", "class"), ("Route", "class"), ("get", "call"), ("next", "call"),
         ("createServer", "call")}),
    "typescript": (TYPESCRIPT, [
        ("block", "", 1, 1), ("interface", "Shape", 2, 2), ("type", "Id", 3, 3), ("enum", "Color", 4, 4),
        ("class", "Circle", 5, 8), ("method", "constructor", 6, 6), ("method", "area", 7, 7),
        ("function", "make", 9, 9), ("module", "NS", 10, 10)],
        {("Shape", "interface"), ("area", "method"), ("Id", "type"), ("Color", "enum"), ("Circle", "class"),
         ("constructor", "method"), ("make", "function"), ("NS", "module")},
        {("Base", "class"), ("Shape", "implementation"), ("Circle", "type"), ("Circle", "class")}),
    "tsx": (TSX, [("function", "App", 1, 1), ("function", "Btn", 2, 2)],
            {("App", "function"), ("Btn", "function")}, {("Props", "type"), ("go", "call")}),
    "go": (GO, [
        ("block", "", 1, 3), ("class", "Point", 5, 5), ("interface", "Shape", 6, 6), ("type", "ID", 7, 7),
        ("block", "", 9, 9), ("method", "Move", 11, 11), ("function", "main", 13, 17)],
        {("Point", "class"), ("Shape", "interface"), ("ID", "type"), ("Pi", "constant"), ("Move", "method"),
         ("main", "function")},
        {("int", "type"), ("float64", "type"), ("string", "type"), ("Point", "type"), ("Move", "call"),
         ("Println", "call")}),
    "rust": (RUST, [
        ("block", "", 1, 1), ("class", "Point", 2, 2), ("enum", "Dir", 3, 3), ("interface", "Shape", 4, 4),
        ("method", "name", 4, 4), ("impl", "Point", 5, 5), ("method", "new", 5, 5), ("impl", "Point", 6, 6),
        ("method", "fmt", 6, 6), ("function", "main", 7, 7), ("module", "inner", 8, 8),
        ("function", "g", 8, 8), ("macro", "sq", 9, 9)],
        {("Point", "class"), ("Dir", "enum"), ("Shape", "interface"), ("area", "method"), ("name", "method"),
         ("new", "method"), ("fmt", "method"), ("main", "function"), ("inner", "module"), ("g", "function"),
         ("sq", "macro")},
        {("new", "call"), ("Point", "type"), ("Display", "implementation"), ("write", "call"),
         ("println", "call"), ("helper", "call")}),
    "java": (JAVA, [
        ("block", "", 1, 2), ("class", "Foo", 3, 9), ("method", "Foo", 5, 5), ("method", "get", 6, 6),
        ("interface", "Inner", 7, 7), ("method", "run", 7, 7), ("enum", "E", 8, 8)],
        {("Foo", "class"), ("count", "field"), ("Foo", "method"), ("get", "method"), ("Inner", "interface"),
         ("run", "method"), ("E", "enum")},
        {("Bar", "class"), ("Baz", "implementation"), ("helper", "call")}),
}


@pytest.mark.parametrize("language", sorted(CASES))
def test_chunks_and_symbols(language):
    source, chunks, defs, refs = CASES[language]
    parsed = parse_source(source.encode(), language)
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in parsed.chunks] == chunks
    assert {(s.name, s.kind) for s in parsed.symbols if s.role == "def"} == defs
    assert {(s.name, s.kind) for s in parsed.symbols if s.role == "ref"} == refs


def test_chunk_byte_ranges_cover_the_definition():
    parsed = parse_source(PYTHON.encode(), "python")
    by_name = {c.name: c for c in parsed.chunks}
    text = PYTHON.encode()
    assert text[by_name["A"].start_byte:].startswith(b"@dec\nclass A(Base):")
    assert text[by_name["m"].start_byte:by_name["m"].end_byte].decode() == (
        "@property\n    def m(self):\n        return helper(self.y)")


def test_symbol_lines_are_one_based():
    parsed = parse_source(PYTHON.encode(), "python")
    assert [(s.name, s.line) for s in parsed.symbols if s.role == "def"][:3] == [("X", 4), ("A", 7), ("m", 12)]


def test_long_top_level_code_is_split_into_blocks():
    source = "".join(f"x{i} = {i}\n" for i in range(100))
    blocks = parse_source(source.encode(), "python").chunks
    assert [(c.kind, c.start_line, c.end_line) for c in blocks] == [
        ("block", 1, 40), ("block", 41, 80), ("block", 81, 100)]


def test_every_registered_language_has_a_compiling_query():
    from datastore.languages import parser_and_query
    reg = registry()
    assert set(reg.languages) >= {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"}
    for name in reg.languages:
        parser, query = parser_and_query(name)
        assert query.pattern_count > 0


def test_languages_by_extension():
    reg = registry()
    assert [reg.language_for(p) for p in ("a.py", "b.tsx", "c.ts", "d.mjs", "e.go", "f.rs", "G.java", "h.rb")] == [
        "python", "tsx", "typescript", "javascript", "go", "rust", "java", None]
    assert reg.is_indexable("h.rb") and not reg.is_indexable("package-lock.json") and not reg.is_indexable("x.png")


def test_broken_source_still_yields_chunks():
    parsed = parse_source(b"def ok():\n    return 1\n\ndef broken(:\n", "python")
    assert ("function", "ok", 1, 2) in [(c.kind, c.name, c.start_line, c.end_line) for c in parsed.chunks]


def test_incremental_reparse_equals_a_fresh_parse():
    import random

    from datastore.chunker import extract, parse_tree
    rng = random.Random(0)
    text = PYTHON.encode()
    tree = parse_tree(text, "python")
    for _ in range(40):
        pos = rng.randrange(len(text) + 1)
        cut = rng.randrange(0, 4)
        new = text[:pos] + rng.choice([b"x", b"\n", b"def g():\n    pass\n", b"", b"(", b"\xc3\xa9"]) + text[pos + cut:]
        try:
            new.decode()
        except UnicodeDecodeError:
            continue
        tree = parse_tree(new, "python", (tree, text))
        text = new
        assert extract(tree, text, "python") == parse_source(text, "python")
