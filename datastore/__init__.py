"""Everything codeswift stores and searches: repository index, general corpus, suffix index."""
