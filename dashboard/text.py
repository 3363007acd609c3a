"""Data shown as text. Streamlit renders markdown in titles, captions, messages, labels and
progress texts, and plotly renders a subset of HTML in chart titles, legends and hovers: a
dataset, column, category, monitor, message or reason that holds `![p](http://host/x.png)`
or `<a href=...>` would make every viewer's browser fetch or link it. Every value that comes
from data, config or a person goes through one of these two before it reaches such an
element; the page's own wording does not."""
from __future__ import annotations

import html
import re
import string

# CommonMark lets any ASCII punctuation be escaped by a backslash, and an escaped character
# is plain text to every later rule: links, images, emphasis, code, HTML, tables,
# Streamlit's `:red[...]` directives and `$math$` all start with one of these
_MARKDOWN_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")


def md(value: object) -> str:
    """`value` as literal text inside a markdown-rendering element (st.markdown, st.caption,
    st.error, st.subheader, a button or page-link label, ...). Line breaks become spaces:
    these elements show one line of data, and a break would start a heading or list."""
    text = " ".join(str(value).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def chart_text(value: object) -> str:
    """`value` as literal text in a plotly title, trace name or hover text (plotly reads
    `<b>`, `<a href>`, `<br>` and entities there, and shows `&lt;` as `<`)."""
    return html.escape(str(value), quote=False)
