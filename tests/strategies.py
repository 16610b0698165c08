"""Hypothesis strategies for hostile values, and the settings every property test uses.

Deterministic (derandomize: the same examples on every run, in CI too), no example database, and
example counts kept small so the whole suite stays quick.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW_PROPERTY = settings(PROPERTY, max_examples=25)

NASTY = ["", " ", "..", "../..", "../../../etc/passwd", "/", "/etc/passwd", ".", "~", "-", "--help", "-k",
         "$(rm -rf /)", "`id`", "; rm -rf / #", "a|b", "a&b", "a>b", "'", '"', "\\", "\\\\", "a\\b", "*", "?",
         "a\nb", "a\rb", "\t", "a\x00b", "\x00", "\x1b[31mred", "\x7f", "\u0085", "\u2028", "\ufeff",
         "MÜLLER^JÜRGEN", "山田^太郎", "Иванов", "Ωμέγα", "\U0001f600", "e\u0301", "\ud800", "\udcff",
         "%PatientID", "%_md5|3_PatientID", "{}", "[]", '{"a": 1}', "NaN", "null"]

nasty = st.sampled_from(NASTY)
unicode_text = st.text(max_size=80)
with_surrogates = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Lu", "Ll", "Po", "Sm"]), max_size=20)
huge = st.sampled_from(["x" * 65536, "é" * 40000, "../" * 22000, "\\" * 70000])

# any value: awkward by design, random Unicode, surrogates and controls, or 64 KB and more
value = st.one_of(nasty, unicode_text, with_surrogates,
                  st.lists(st.one_of(nasty, unicode_text), min_size=2, max_size=4).map("".join), huge)
