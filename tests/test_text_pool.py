"""The general text pool (jaxclip.data.text_pool) and pool files."""

from __future__ import annotations

import re

import pytest

from jaxclip.data import text_pool as tp
from jaxclip.errors import UserError


def test_general_pool_is_deterministic_distinct_and_of_the_stated_size():
    pool = tp.general_pool()
    assert pool == tp.general_pool()
    assert len(pool) == len(set(pool)) == tp.GENERAL_POOL_SIZE == 2688
    # The module docstring's count, from the lengths of the word lists it names.
    c, o, m, s, st, t = 12, 40, 12, 16, 8, 10
    assert 2688 == c * o + 5 * o + 5 * o + o * m + o * s + st * o + t * m + c * t + st * s
    assert [len(tp.WORD_LISTS[k]) for k in ("colours", "objects", "materials", "scenes")] == [
        c,
        o,
        m,
        s,
    ]
    assert [len(tp.WORD_LISTS[k]) for k in ("styles", "textures", "sizes", "counts")] == [
        st,
        t,
        5,
        5,
    ]
    assert pool[0] == "a photo of a red circle."
    assert all(p == p.strip() and p.endswith(".") and "  " not in p for p in pool)
    # Articles agree with the next word.
    assert not [p for p in pool if re.search(r"\ba [aeiou]", p)]
    assert not [p for p in pool if re.search(r"\ban [^aeiou]", p)]


def test_every_word_of_every_list_is_used():
    text = "\n".join(tp.general_pool())
    for name, words in tp.WORD_LISTS.items():
        for w in words:
            for form in w if isinstance(w, tuple) else (w,):
                assert re.search(rf"\b{re.escape(form)}\b", text), (name, form)


def test_pool_file(tmp_path):
    f = tmp_path / "pool.txt"
    f.write_text("a photo of a dog.\n\n  a sketch of a cat.  \na photo of a dog.\n")
    assert tp.load_pool_file(f) == ["a photo of a dog.", "a sketch of a cat."]
    with pytest.raises(UserError, match=r"text_pool='.*missing\.txt': no such file; give"):
        tp.load_pool_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n")
    with pytest.raises(UserError, match=r"empty\.txt' holds no description"):
        tp.load_pool_file(empty, field="config.inside.text_pool")
    with pytest.raises(UserError, match=r"^config\.inside\.text_pool="):
        tp.load_pool_file(empty, field="config.inside.text_pool")
