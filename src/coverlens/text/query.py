"""Text search queries: the FTS5 expressions a query becomes (phrase, fuzzy) and the highlighted
snippet of a matched text. Pure functions, used by `coverlens.text.store`."""

from __future__ import annotations

import re

_QUOTE = re.compile(r'"')
_WORD = re.compile(r"\w+")  # the pieces of a query that fuzzy matching uses (no FTS5 syntax, no quotes)


def phrase(query: str) -> str:
    return '"' + _QUOTE.sub('""', query) + '"'


def fuzzy_expression(query: str) -> str:
    """An FTS5 expression that tolerates one wrong or missing character per query word.

    Each word (3+ characters) is cut into 3-character pieces; a cover matches the word when it holds
    all pieces but one. ANDed pieces are far more selective than an OR of every trigram.
    """
    clauses = []
    for word in _WORD.findall(query.lower()):
        if len(word) < 3:
            continue
        pieces = [word[i:i + 3] for i in range(0, len(word) - 2, 3)]
        if len(word) % 3:
            pieces.append(word[-3:])
        pieces = list(dict.fromkeys(pieces))
        if len(pieces) == 1:
            clauses.append(phrase(pieces[0]))
            continue
        for left_out in range(len(pieces)):
            kept = [phrase(p) for i, p in enumerate(pieces) if i != left_out]
            clauses.append("(" + " AND ".join(kept) + ")")
    return " OR ".join(clauses)


def trigrams(query: str) -> list[str]:
    """The distinct trigrams inside each word: OCR often drops spaces, so none spans a space."""
    grams = {word[i:i + 3] for word in _WORD.findall(query.lower()) for i in range(len(word) - 2)}
    return sorted(grams)



def highlight(text: str, query: str, width: int = 80) -> str:
    """The part of `text` around what matched, matched runs in [brackets], lines joined by " / ".

    Marks every character covered by the query itself (ignoring case) or, for a loose match, by one
    of its trigrams. FTS5's own snippet() repeats text when trigram tokens overlap, hence this.
    """
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    lowered, covered = flat.lower(), [False] * len(flat)
    pieces = [" ".join(query.lower().split())]
    if pieces[0] not in lowered:
        pieces = trigrams(query) or [p for p in query.lower().split() if p]
    for piece in pieces:
        start = lowered.find(piece)
        while start >= 0:
            covered[start:start + len(piece)] = [True] * len(piece)
            start = lowered.find(piece, start + 1)
    if not any(covered):
        return flat[:width]
    first = covered.index(True)
    lo = max(0, first - width // 3)
    hi = min(len(flat), lo + width)
    out, inside = [], False
    for i in range(lo, hi):
        if covered[i] != inside:
            out.append("[" if covered[i] else "]")
            inside = covered[i]
        out.append(flat[i])
    if inside:
        out.append("]")
    return ("…" if lo > 0 else "") + "".join(out) + ("…" if hi < len(flat) else "")
