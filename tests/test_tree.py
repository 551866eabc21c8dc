"""Token tree as pure functions on hand-made trees."""
import numpy as np

from codeswift.tree import (ancestor_mask, build_tree, chain_tree, greedy_accept,
                            kv_keep_positions, truncate)


def test_build_tree_merges_shared_prefixes_and_orders_best_chain_first():
    drafts = [([5, 6, 7], 3.0, "a", 1.0), ([5, 6, 9], 1.0, "b", 1.0), ([8], 1.0, "a", 1.0)]
    t = build_tree(100, drafts, max_nodes=10)
    # root 100; 5 (w4) -> 6 (w4) -> {7 (w3), 9 (w1)}; 8 (w1)
    assert t.tokens.tolist() == [100, 5, 6, 7, 9, 8]
    assert t.parents.tolist() == [-1, 0, 1, 2, 2, 0]
    assert t.depth.tolist() == [0, 1, 2, 3, 3, 1]
    assert np.allclose(t.prob, [1, 0.8, 0.8, 0.6, 0.2, 0.2])
    assert t.sources[2] == {"a", "b"} and t.sources[5] == {"a"}


def test_build_tree_budget_keeps_most_probable_ancestor_closed():
    drafts = [([5, 6, 7], 3.0, "a", 1.0), ([5, 6, 9], 1.0, "b", 1.0), ([8], 1.0, "a", 1.0)]
    t = build_tree(100, drafts, max_nodes=4)
    assert t.tokens.tolist() == [100, 5, 6, 7]
    assert t.parents.tolist() == [-1, 0, 1, 2]


def test_ancestor_mask_on_five_node_tree():
    #      0
    #    1   4
    #  2  3
    parents = np.array([-1, 0, 1, 1, 0])
    m = ancestor_mask(parents)
    expected = np.array([[1, 0, 0, 0, 0],
                         [1, 1, 0, 0, 0],
                         [1, 1, 1, 0, 0],
                         [1, 1, 0, 1, 0],
                         [1, 0, 0, 0, 1]], dtype=bool)
    assert (m == expected).all()


def test_greedy_accept_follows_argmax_and_returns_bonus():
    t = build_tree(100, [([5, 6, 7], 3.0, "a", 1.0), ([5, 6, 9], 1.0, "b", 1.0), ([8], 1.0, "a", 1.0)], 10)
    # tokens [100, 5, 6, 7, 9, 8]; model: after 100 -> 5, after 5 -> 6, after 6 -> 9, after 9 -> 42
    argmax = np.array([5, 6, 9, 0, 42, 0])
    path, bonus = greedy_accept(t, argmax)
    assert path == [0, 1, 2, 4] and bonus == 42


def test_greedy_accept_rejects_everything_when_first_token_differs():
    t = build_tree(100, [([5, 6], 1.0, "a", 1.0)], 10)
    path, bonus = greedy_accept(t, np.array([77, 6, 0]))
    assert path == [0] and bonus == 77       # rejected draft tokens never appear


def test_kv_keep_positions_crop_vs_select():
    assert kv_keep_positions(10, [0, 1, 2]) == 13
    assert kv_keep_positions(3, [0, 1, 3]).tolist() == [0, 1, 2, 3, 4, 6]


def test_chain_and_truncate():
    c = chain_tree(1, [2, 3, 4])
    assert c.parents.tolist() == [-1, 0, 1, 2] and c.depth.tolist() == [0, 1, 2, 3]
    t = build_tree(100, [([5, 6, 7], 3.0, "a", 1.0), ([8], 1.0, "a", 1.0)], 10)
    tt = truncate(t, 3)
    assert tt.tokens.tolist() == [100, 5, 6] and tt.parents.tolist() == [-1, 0, 1]
