"""The e-mail of one notification or of a digest: templates, and the fallback to the
notification's own text whenever a template is absent or fails."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tidings.core.email_content import Recipient, digest_email, notification_email
from tidings.core.typedefs import EmailTemplates, Templates, TypeDefinition

TO = Recipient("ann@example.com", "Ann", "https://app.example/#prefs", attempt=2)
TEXT = st.text(min_size=1, max_size=40)


def row(message, title=None, data=None, uid="u-1", seq=1):
    return {"uid": uid, "seq": seq, "message": message, "title": title, "data": data,
            "type": "comment", "user_id": "ann"}


@given(TEXT, st.none() | TEXT, st.booleans())
def test_without_templates_or_with_failing_ones_the_notifications_own_text_is_sent(
        message, title, failing):
    group = EmailTemplates(subject="{{ data.missing }}", text="{{ data.missing }}",
                           html="{{ data.missing }}") if failing else None
    t = TypeDefinition(title="Comments", channels={"email": True},
                       templates=Templates(email=group))
    got = notification_email(t, row(message, title), TO)
    assert (got.subject, got.text, got.html) == (title or "Comments", message, None)
    assert (got.to, got.to_name, got.reference, got.attempt) == ("ann@example.com", "Ann",
                                                                 "u-1", 2)
    assert got.preferences_url == TO.preferences_url and got.unsubscribe_url is None
    one_click = replace(TO, unsubscribe_url="https://app.example/api/v1/unsubscribe?token=t")
    got = notification_email(t, row(message, title), one_click)
    assert got.unsubscribe_url == one_click.unsubscribe_url and got.one_click


def test_templates_render_subject_text_and_html():
    t = TypeDefinition(title="Comments", channels={"email": True}, templates=Templates(
        email=EmailTemplates(subject="On {{ data.post }}", text="{{ message }}!",
                             html="<b>{{ message|e }}</b>")))
    got = notification_email(t, row("a<b", data={"post": "P"}), TO)
    assert (got.subject, got.text, got.html) == ("On P", "a<b!", "<b>a&lt;b</b>")


@given(st.lists(st.tuples(TEXT, st.none() | TEXT), min_size=2, max_size=6))
def test_a_digest_lists_every_notification_in_order_by_default(items):
    t = TypeDefinition(title="Comments", channels={"email": True})
    rows = [row(m, ti, uid=f"u{i}", seq=i) for i, (m, ti) in enumerate(items)]
    got = digest_email(t, "comment", rows, TO, "ann", "digest-7")
    assert got.subject == f"{len(items)} new comments" and got.reference == "digest-7"
    assert got.text == "\n".join(f"- {ti}: {m}" if ti else f"- {m}" for m, ti in items)
    assert got.html is None
