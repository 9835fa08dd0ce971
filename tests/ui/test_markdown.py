"""DAG docs as safe HTML: the author's text is escaped, a small Markdown subset is rendered."""

from __future__ import annotations

from frontend.markdown import render_markdown


def test_markup_is_rendered():
    html = render_markdown(
        "# Title\n\nSome **bold**, *italic* and `code <b>`.\n\n- one\n- two\n\n1. first\n\n"
        "```\nx = '<tag>'\n```\n[docs](https://example.com/a?b=1&c=2)"
    )
    assert "<h1>Title</h1>" in html
    assert "<p>Some <strong>bold</strong>, <em>italic</em> and <code>code &lt;b&gt;</code>.</p>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n</ol>" in html
    assert "<pre><code>x = &#x27;&lt;tag&gt;&#x27;</code></pre>" in html
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">docs</a>' in html


def test_html_in_docs_is_escaped():
    html = render_markdown('<script>alert(1)</script><img src=x onerror="alert(2)">')
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_only_safe_link_targets_become_links():
    html = render_markdown(
        "[a](javascript:alert(1)) [b](JAVASCRIPT:x) [c](data:text/html,hi) [d](/t/acme/dags/)"
    )
    assert "href" in html and html.count("<a ") == 1
    assert '<a href="/t/acme/dags/"' in html
    assert "[a](javascript:alert(1))" in html


def test_a_quote_cannot_leave_the_href():
    html = render_markdown('[x](https://e.com/"onmouseover="alert(1))')
    assert 'onmouseover="' not in html


def test_nothing_to_render():
    assert render_markdown(None) == "" and render_markdown("   \n") == ""
